"""One verified dump file: pg_dump to a temporary name, check the exit
status, fsync, read the whole file back with pg_restore, then rename into
place. A failure at any step leaves no file behind."""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import psycopg2

from shared.backup.errors import DumpFailed, VerifyFailed
from shared.backup.pgtools import PgTools, libpq_environment, run, stderr_tail
from shared.backup.snapshot import SnapshotSummary
from shared.config import Config
from shared.db.pool import DatabaseUnavailable, connect
from shared.infra.errortext import first_line
from shared.infra.privatefiles import create_private_file, private_dir

MAGIC = b"PGDMP"
TMP_SUFFIX = ".tmp"


@dataclass(frozen=True)
class DumpFile:
    path: Path
    size: int
    duration: float
    sha256: str
    tables: dict[str, dict[str, Any]] | None = None  # contents.summarize() at dump time


def dump_file_name(dbname: str, when: dt.datetime) -> str:
    """``<db>_<ISO UTC time with ':' and '.' as '-'>.dump`` (spec §9.1)."""
    stamp = when.astimezone(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return f"{dbname}_{stamp.replace(':', '-').replace('.', '-')}.dump"


def fsync_path(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def verify(tools: PgTools, path: Path, env: dict[str, str], *, fd: int | None = None) -> None:
    """Read the whole archive back: the magic, the table of contents, and
    every data block (pg_restore to /dev/null decompresses everything).
    ``fd``: the archive's open file, read through ``/dev/fd`` rather than by
    name (inherited by pg_restore)."""
    if fd is not None:
        path = Path(f"/dev/fd/{fd}")
    with path.open("rb") as handle:
        if handle.read(len(MAGIC)) != MAGIC:
            raise VerifyFailed("not a pg_dump custom-format archive (no PGDMP header)")
    fds = () if fd is None else (fd,)
    listing = run([tools.pg_restore, "--list", str(path)], env, pass_fds=fds)
    if listing.returncode != 0:
        raise VerifyFailed(f"pg_restore --list failed: {stderr_tail(listing)}")
    full = run([tools.pg_restore, "--file", os.devnull, str(path)], env, pass_fds=fds)
    if full.returncode != 0:
        raise VerifyFailed(f"pg_restore could not read the archive: {stderr_tail(full)}")


# (phase, bytes done, total bytes when known, seconds elapsed)
Progress = Callable[[str, int, int | None, float], None]


def dump_source(config: Config, dbname: str) -> Config:
    """The server to dump: the primary (as every connection), or with
    BACKUP_FROM_STANDBY a standby when one answers (else the primary). The
    choice is pinned to one host so the snapshot summary and pg_dump read
    the same server."""
    if not config.backup_from_standby:
        return config
    try:
        conn = connect(replace(config, db_session_attrs="prefer-standby"), dbname)
    except DatabaseUnavailable as exc:
        raise DumpFailed(str(exc)) from None
    try:
        host, port = conn.info.host, conn.info.port
    finally:
        conn.close()
    return replace(config, db_host=host, db_port=int(port), db_ports=(), db_session_attrs="any")


def dump_database(
    config: Config,
    tools: PgTools,
    dest_dir: Path,
    *,
    dbname: str | None = None,
    name: str | None = None,
    summarize: bool = False,
    progress: Progress | None = None,
) -> DumpFile:
    """A verified dump. With ``summarize``, the key tables' row counts and
    checksums are read in the very snapshot pg_dump dumps (snapshot.py), so
    they describe exactly the archive's rows."""
    dbname = dbname or config.db_name
    config = dump_source(config, dbname)
    try:
        private_dir(dest_dir)  # dumps hold every user's identity and share: 0700 / 0600
    except OSError as exc:
        raise DumpFailed(f"cannot write the dump: {first_line(exc, 300)}") from None
    final = dest_dir / (name or dump_file_name(dbname, dt.datetime.now(dt.UTC)))
    tmp = final.with_name(final.name + TMP_SUFFIX)
    env = libpq_environment(config, dbname)
    started = time.monotonic()
    summary: SnapshotSummary | None = None
    tables = None

    def tick(_pid: int = 0) -> None:
        if progress is not None:
            try:
                size = tmp.stat().st_size
            except OSError:
                size = 0
            progress("dump", size, None, time.monotonic() - started)

    fd: int | None = None
    try:
        # pg_dump writes through /dev/fd into the file made here, never by
        # name: the folder may be another account's (DUMP_DIR is the
        # programs' when `ksnode backup` runs as root), which could put a
        # link at the temporary name (shared/infra/privatefiles.py).
        fd = create_private_file(tmp)
        args = [
            tools.pg_dump,
            "--format=custom",
            f"--compress={config.backup_compression}",
            "--file",
            f"/dev/fd/{fd}",
            "--dbname",
            dbname,
        ]
        if summarize:
            summary = SnapshotSummary(config, dbname).start()
            args.insert(1, f"--snapshot={summary.snapshot_id}")
        try:
            result = run(args, env, tick=tick if progress else None, pass_fds=(fd,))
            if summary is not None:
                tables = summary.result()
        except (OSError, subprocess.SubprocessError) as exc:
            raise DumpFailed(f"cannot run pg_dump: {exc}") from None
        finally:
            if summary is not None:
                summary.close()
                summary = None
        if result.returncode != 0:
            raise DumpFailed(f"pg_dump failed: {stderr_tail(result)}")
        made = os.fstat(fd)
        if made.st_size == 0:
            raise DumpFailed("pg_dump wrote no data")
        tick()
        os.fsync(fd)
        verify(tools, tmp, env, fd=fd)
        digest = sha256_of(Path(f"/dev/fd/{fd}"))
        os.replace(tmp, final)
        try:
            placed = os.stat(final, follow_symlinks=False)
        except OSError:
            placed = None
        if placed is None or (placed.st_dev, placed.st_ino) != (made.st_dev, made.st_ino):
            final.unlink(missing_ok=True)
            raise DumpFailed(f"the dump was replaced while it was written: {final}")
        fsync_path(dest_dir)
    except (psycopg2.Error, DatabaseUnavailable) as exc:
        raise DumpFailed(f"cannot read the database: {str(exc).strip()[:300]}") from None
    except OSError as exc:
        # DUMP_DIR read-only, not ours, or full where pg_dump does not write
        # (the file's creation, fsync, rename): a failed backup with its
        # reason, retried with back-off, not a crash of the attempt.
        raise DumpFailed(f"cannot write the dump: {first_line(exc, 300)}") from None
    finally:
        if summary is not None:
            summary.close()
        if fd is not None:
            os.close(fd)
        try:
            if tmp.exists() or tmp.is_symlink():
                tmp.unlink()
        except OSError:  # the folder went read-only meanwhile: recovery removes it later
            pass
    return DumpFile(
        final, final.stat().st_size, round(time.monotonic() - started, 3), digest, tables
    )
