"""Deleting old dumps: only after a successful new dump, only those older
than BACKUP_RETENTION_DAYS, and never below BACKUP_MIN_KEEP good dumps."""

from __future__ import annotations

import datetime as dt
import logging
from pathlib import Path

from shared.store import dumps

log = logging.getLogger(__name__)


def apply_retention(
    cur, retention_days: float, min_keep: int, now: dt.datetime | None = None
) -> list[str]:
    """Delete expired dumps (file, then row → DELETED); their dump ids."""
    now = now or dt.datetime.now(dt.UTC)
    cutoff = now - dt.timedelta(days=retention_days)
    kept_newest = set()
    good = 0
    rows = dumps.completed(cur)
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
                Path(row.dump_path).unlink(missing_ok=True)
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
