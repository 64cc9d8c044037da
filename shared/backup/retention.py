"""Deleting old dumps: only after a successful new dump, only those older
than BACKUP_RETENTION_DAYS, and never below BACKUP_MIN_KEEP good dumps.

Several nodes on one database each keep their dumps on their own disk, and
the history table is shared. A node only judges the dumps it holds: those
whose row names it (``meta.node_id``, written at completion) or, for rows
written before nodes were named, whose file lies in its DUMP_DIR. So a
dump is marked DELETED only by the node that deleted its file, and the
BACKUP_MIN_KEEP newest dumps a node keeps are files that exist on its disk.
"""

from __future__ import annotations

import datetime as dt
import errno
import logging
import os
from pathlib import Path

from shared.store import dumps

log = logging.getLogger(__name__)


def held_here(row: dumps.DumpRow, node_id: str, dump_dir: Path) -> bool:
    owner = (row.meta or {}).get("node_id")
    if owner is not None:
        return owner == node_id
    if not row.dump_path:
        return False
    return Path(row.dump_path).resolve().is_relative_to(dump_dir.resolve())


def delete_dump_file(path: Path, dump_dir: Path) -> None:
    """Remove a dump by its name in DUMP_DIR, nothing elsewhere. The path
    comes from the history table, which the programs' account can write,
    and `ksnode backup` may run as root: a row naming ``/etc/...`` (or a
    path through a link to another folder) is refused, and a link in
    DUMP_DIR is removed as a link."""
    if path.parent.resolve() != dump_dir.resolve():
        raise OSError(errno.EPERM, "not a file of DUMP_DIR", str(path))
    folder = os.open(dump_dir, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.unlink(path.name, dir_fd=folder)
    except FileNotFoundError:
        pass
    finally:
        os.close(folder)


def apply_retention(
    cur,
    retention_days: float,
    min_keep: int,
    now: dt.datetime | None = None,
    *,
    node_id: str,
    dump_dir: Path,
) -> list[str]:
    """Delete this node's expired dumps (file, then row → DELETED); their dump ids."""
    now = now or dt.datetime.now(dt.UTC)
    cutoff = now - dt.timedelta(days=retention_days)
    kept_newest = set()
    good = 0
    rows = [row for row in dumps.completed(cur) if held_here(row, node_id, dump_dir)]
    for row in rows:  # newest first
        if good < min_keep and row.dump_path and Path(row.dump_path).is_file():
            kept_newest.add(row.dump_id)
            good += 1
    deleted = []
    for row in rows:
        if row.dump_id in kept_newest or row.created_at >= cutoff:
            continue
        if row.dump_path:
            try:
                delete_dump_file(Path(row.dump_path), dump_dir)
            except OSError as exc:
                log.warning(
                    "cannot delete old dump file",
                    extra={
                        "event": "retention.unlink_failed",
                        "dump_id": row.dump_id,
                        "error": exc.strerror,
                    },
                )
                continue
        dumps.mark_deleted(cur, row.dump_id)
        deleted.append(row.dump_id)
    return deleted
