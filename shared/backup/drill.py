"""Restore drills: prove the real backup restores. The newest COMPLETED dump
is checked against its recorded SHA-256, restored into a scratch database,
and the key tables' row counts and content checksums are compared with what
the dump's meta recorded at dump time. The scratch database is always
dropped, whatever fails."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import psycopg2

from shared.backup.dump import Progress, sha256_of
from shared.backup.errors import BackupError
from shared.backup.pgtools import (
    PgTools,
    bytes_read,
    libpq_environment,
    run,
    stderr_tail,
)
from shared.backup.selfcheck import admin_connect, drop_databases
from shared.config import Config
from shared.db.pool import DatabaseUnavailable, connect
from shared.infra.errortext import first_line
from shared.store import contents
from shared.store.dumps import DumpRow

DRILL_PREFIX = "ksn_drill_"


def compare(expected: dict, found: dict) -> list[str]:
    """Differences between two contents.summarize() results, in words."""
    problems = []
    for table, want in sorted(expected.items()):
        got = found.get(table)
        if got is None:
            problems.append(f"{table}: missing after restore")
        elif got["rows"] != want["rows"]:
            problems.append(f"{table}: {got['rows']} rows, {want['rows']} recorded at dump time")
        elif got["checksum"] != want["checksum"]:
            problems.append(f"{table}: content checksum differs from the one recorded")
    return problems


def run_drill(
    config: Config,
    tools: PgTools,
    row: DumpRow,
    dump_dir: Path,
    progress: Progress | None = None,
) -> tuple[bool, str | None]:
    """(passed, reason when not) for the dump of ``row``."""
    meta = row.meta or {}
    path = Path(row.dump_path or "")
    if not row.dump_path or not path.is_file():
        return False, f"dump file missing: {row.dump_path}"
    if meta.get("sha256") and sha256_of(path) != meta["sha256"]:
        return False, f"{path.name}: SHA-256 differs from the one recorded; the file changed"
    scratch = f"{DRILL_PREFIX}{uuid.uuid4().hex[:10]}"
    created: list[str] = []
    size = path.stat().st_size
    started = time.monotonic()

    def tick(pid: int) -> None:
        if progress is not None:
            done = min(bytes_read(pid) or 0, size)
            progress("drill", done, size, time.monotonic() - started)

    try:
        admin = admin_connect(config)
        try:
            with admin.cursor() as cur:
                cur.execute(f'CREATE DATABASE "{scratch}"')
                created.append(scratch)
        finally:
            admin.close()
        result = run(
            [
                tools.pg_restore,
                "--exit-on-error",
                "--no-owner",
                "--single-transaction",
                "--dbname",
                scratch,
                str(path),
            ],
            libpq_environment(config, scratch),
            tick=tick if progress else None,
        )
        if result.returncode != 0:
            return False, f"restore into a scratch database failed: {stderr_tail(result)}"
        conn = connect(config, scratch)
        try:
            with conn.cursor() as cur:
                found = contents.summarize(cur)
            conn.rollback()
        finally:
            conn.close()
        problems = compare(meta.get("tables") or {}, found)
        return (False, "; ".join(problems)) if problems else (True, None)
    except (BackupError, DatabaseUnavailable, psycopg2.Error, OSError) as exc:
        return False, first_line(exc, 300)
    finally:
        drop_databases(config, created)
