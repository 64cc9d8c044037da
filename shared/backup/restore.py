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
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from shared.backup.dump import (
    DumpFile,
    Progress,
    dump_database,
    dump_file_name,
    verify,
)
from shared.backup.errors import RestoreFailed
from shared.backup.pgtools import (
    PgTools,
    bytes_read,
    libpq_environment,
    run,
    stderr_tail,
)
from shared.config import Config
from shared.crypto.sealing import NAMED_FORMATS, SecretError, value_format
from shared.crypto.secretfiles import load_cipher
from shared.db.failover import probe_servers
from shared.db.pool import DatabaseUnavailable, connect, connect_kwargs
from shared.store.tables import SERVER_KEYPAIRS

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


def _copy_values(output: str, column: str) -> list[str]:
    """The values of ``column`` in the COPY blocks of pg_restore's text output."""
    values: list[str] = []
    index: int | None = None
    for line in output.splitlines():
        if index is None:
            if line.startswith("COPY ") and line.endswith(" FROM stdin;"):
                names = line[line.index("(") + 1 : line.rindex(")")].split(", ")
                index = names.index(column) if column in names else -1
            continue
        if line == "\\.":
            index = None
        elif index >= 0:
            fields = line.split("\t")
            if index < len(fields):
                values.append(fields[index])
    return values


def refuse_unknown_keypair_keys(
    config: Config, tools: PgTools, path: Path, env: dict[str, str]
) -> None:
    """Refuse, before anything changes, a dump whose server keypair is sealed
    under a secret this node does not have (a backup from before a secret
    rotation, the old secret since removed): restored, the node serves on
    with the keypair it holds, but every later start refuses ("no configured
    secret has that key id"). The keypair table is a few rows: cheap to read."""
    table = SERVER_KEYPAIRS.strip('"')
    listing = run(
        [tools.pg_restore, "--data-only", "--table", table, "--file", "-", str(path)], env
    )
    if listing.returncode != 0:
        return  # verify() read the archive; nothing more to learn here
    key_ids = {
        key_id
        for value in _copy_values(listing.stdout, "enc_private_key")
        for fmt, key_id in [value_format(value)]
        if fmt in NAMED_FORMATS and key_id
    }
    if not key_ids:
        return
    try:
        cipher = load_cipher(config.effective_secret_path, config.encryption_secret_previous_paths)
    except SecretError as exc:
        raise RestoreFailed(f"restore not started: {exc}; database unchanged") from None
    known = {cipher.current_key_id, *cipher.previous_key_ids}
    unknown = sorted(key_ids - known)
    if unknown:
        raise RestoreFailed(
            f"restore refused: the dump's server keypair is under key id {', '.join(unknown)}, "
            "which no configured secret has (ENCRYPTION_SECRET_PATH / "
            "ENCRYPTION_SECRET_PREVIOUS_PATHS); add the secret it was written with, then "
            "restore again; database unchanged"
        )


APPLICATION_NAME = "ksnode_restore"  # how recovery finds a pg_restore still connected
LIST_PREFIX, LIST_SUFFIX = ".restore-", ".list"


def refuse_standby(config: Config) -> None:
    """A restore writes: refused, with the reason, when the only server that
    answers is a standby (pg_restore would fail only after the safety dump)."""
    try:
        connect(config).close()
        return
    except DatabaseUnavailable as exc:
        reason, detail = probe_servers(connect_kwargs(config))
        if reason == "database_read_only":
            raise RestoreFailed(
                f"restore refused: {detail}; a restore must run against the primary "
                "(promote it, or point DB_HOST at it); database unchanged"
            ) from None
        raise RestoreFailed(f"restore not started: {exc}; database unchanged") from None


def restore_database(
    config: Config,
    tools: PgTools,
    path: Path,
    dump_dir: Path,
    *,
    before_restore: Callable[[DumpFile], None] | None = None,
    progress: Progress | None = None,
) -> DumpFile:
    """Restore ``path``; returns the safety dump taken just before.
    ``before_restore(safety)`` runs after the safety dump, right before the
    point of no return; it may raise to stop (e.g. the deadline passed)."""
    refuse_standby(config)
    env = libpq_environment(config)
    verify(tools, path, env)
    refuse_unknown_keypair_keys(config, tools, path, env)
    safety = dump_database(
        replace(config, backup_from_standby=False),  # the data about to be replaced
        tools,
        dump_dir,
        name="pre_restore_" + dump_file_name(config.db_name, dt.datetime.now(dt.UTC)),
        summarize=True,
        progress=progress,
    )
    if before_restore is not None:
        before_restore(safety)
    fd, list_path = tempfile.mkstemp(prefix=LIST_PREFIX, suffix=LIST_SUFFIX, dir=dump_dir)
    started = time.monotonic()
    size = path.stat().st_size

    def tick(pid: int) -> None:
        if progress is not None:
            done = min(bytes_read(pid) or 0, size)
            progress("restore", done, size, time.monotonic() - started)

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
            {**env, "PGAPPNAME": APPLICATION_NAME},
            tick=tick if progress else None,
        )
    finally:
        os.unlink(list_path)
    if result.returncode != 0:
        raise RestoreFailed(f"pg_restore failed, database unchanged: {stderr_tail(result)}")
    return safety
