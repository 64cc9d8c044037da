"""The startup self-check (spec §9.3, done better): dump a scratch database,
restore it into a second one, compare, and always drop both and delete the
file — nothing is left behind, whatever fails."""

from __future__ import annotations

import shutil
import tempfile
import uuid
from pathlib import Path

import psycopg2

from shared.backup.dump import dump_database
from shared.backup.errors import BackupError, SelfcheckNotRun
from shared.backup.pgtools import PgTools, libpq_environment, run, stderr_tail
from shared.config import Config
from shared.db.pool import DatabaseUnavailable, connect
from shared.infra.errortext import first_line

ROWS = [(1, "test1@test.com", b"\x00\x01\xff", '{"k": "ü"}'), (2, "test2@test.com", b"", "[]")]


def admin_connect(config: Config):
    return connect(config, autocommit=True)


def run_selfcheck(config: Config, tools: PgTools, dump_dir: Path) -> tuple[bool, str | None]:
    """(passed, reason when not). Raises SelfcheckNotRun when DUMP_DIR
    takes no scratch folder (read-only, full, not ours): the worker keeps
    running and tries again, instead of dying at start over and over."""
    tag = uuid.uuid4().hex[:10]
    source, target = f"ksn_selfcheck_{tag}_src", f"ksn_selfcheck_{tag}_dst"
    try:
        scratch = Path(tempfile.mkdtemp(prefix=".selfcheck-", dir=dump_dir))
    except OSError as exc:
        # The reason without the random folder name: the same cause reads the same.
        why = exc.strerror or type(exc).__name__
        raise SelfcheckNotRun(f"cannot write in DUMP_DIR ({dump_dir}): {why}") from None
    created: list[str] = []
    try:
        admin = admin_connect(config)
        try:
            with admin.cursor() as cur:
                for name in (source, target):
                    cur.execute(f'CREATE DATABASE "{name}"')
                    created.append(name)
        finally:
            admin.close()
        conn = connect(config, source, autocommit=True)
        try:
            with conn.cursor() as cur:
                cur.execute(
                    "CREATE TABLE test_table (id int PRIMARY KEY, email varchar(255) NOT NULL,"
                    " blob bytea NOT NULL, doc jsonb NOT NULL)"
                )
                cur.executemany("INSERT INTO test_table VALUES (%s, %s, %s, %s)", ROWS)
        finally:
            conn.close()
        archive = dump_database(config, tools, scratch, dbname=source, name="selfcheck.dump")
        result = run(
            [
                tools.pg_restore,
                "--exit-on-error",
                "--no-owner",
                "--dbname",
                target,
                str(archive.path),
            ],
            libpq_environment(config, target),
        )
        if result.returncode != 0:
            return False, f"restore failed: {stderr_tail(result)}"
        conn = connect(config, target, autocommit=True)
        try:
            with conn.cursor() as cur:
                cur.execute("SELECT id, email, blob, doc::text FROM test_table ORDER BY id")
                restored = [(i, e, bytes(b), d) for i, e, b, d in cur.fetchall()]
        finally:
            conn.close()
        if restored != ROWS:
            return False, "restored data mismatch"
        return True, None
    except (BackupError, DatabaseUnavailable, psycopg2.Error, OSError) as exc:
        return False, first_line(exc, 300)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
        drop_databases(config, created)


def drop_databases(config: Config, names: list[str]) -> None:
    if not names:
        return
    try:
        admin = admin_connect(config)
    except DatabaseUnavailable:
        return
    try:
        with admin.cursor() as cur:
            for name in names:
                cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        admin.close()
