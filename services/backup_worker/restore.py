"""Restoring a dump into the live database, safely.

Only regular files inside DUMP_DIR (symlinks resolved, ``..`` rejected) are
accepted; the file is verified first; a safety dump of the current database
is taken; then pg_restore runs in a single transaction, so a failure leaves
the database as it was. Our operational tables (``ksn_*``) and the backup
history (``"2_pg_dumps"``) are not restored: the running job, heartbeats and
the record of existing dump files stay true.
"""

from __future__ import annotations

import datetime as dt
import os
import tempfile
from pathlib import Path

from services.backup_worker.dump import DumpFile, dump_database, dump_file_name, verify
from services.backup_worker.errors import RestoreFailed
from services.backup_worker.pgtools import PgTools, libpq_environment, run, stderr_tail
from shared.config import Config

KEEP_OUT = ("2_pg_dumps", "2_pg_dumps_pkey")


def restore_list(tools: PgTools, path: Path, env: dict[str, str]) -> str:
    """The archive's table of contents without our operational objects."""
    listing = run([tools.pg_restore, "--list", str(path)], env)
    if listing.returncode != 0:
        raise RestoreFailed(f"cannot read the archive: {stderr_tail(listing)}")
    kept = []
    for line in listing.stdout.splitlines():
        tokens = line.split()
        if any(t in KEEP_OUT or t.startswith(("ksn_", "idx_ksn_")) for t in tokens):
            continue
        kept.append(line)
    return "\n".join(kept) + "\n"


def restore_database(config: Config, tools: PgTools, path: Path, dump_dir: Path) -> DumpFile:
    """Restore ``path``; returns the safety dump taken just before."""
    env = libpq_environment(config)
    verify(tools, path, env)
    safety = dump_database(
        config,
        tools,
        dump_dir,
        name="pre_restore_" + dump_file_name(config.db_name, dt.datetime.now(dt.UTC)),
    )
    fd, list_path = tempfile.mkstemp(prefix=".restore-", suffix=".list", dir=dump_dir)
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(restore_list(tools, path, env))
        result = run(
            [
                tools.pg_restore,
                "--clean",
                "--if-exists",
                "--single-transaction",
                "--exit-on-error",
                "--no-owner",
                "--use-list",
                list_path,
                "--dbname",
                config.db_name,
                str(path),
            ],
            env,
        )
    finally:
        os.unlink(list_path)
    if result.returncode != 0:
        raise RestoreFailed(f"pg_restore failed, database unchanged: {stderr_tail(result)}")
    return safety
