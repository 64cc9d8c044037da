"""When the next automatic backup is due: BACKUP_INTERVAL_SECONDS after the
newest COMPLETED dump, so restarts neither skip nor double a backup."""

from __future__ import annotations

import datetime as dt

from shared.store import dumps


def seconds_until_due(cur, interval_seconds: float, now: dt.datetime | None = None) -> float:
    """0 when a backup is due now (also when there was never one)."""
    newest = dumps.newest_completed_at(cur)
    if newest is None:
        return 0.0
    now = now or dt.datetime.now(dt.UTC)
    return max(0.0, (newest + dt.timedelta(seconds=interval_seconds) - now).total_seconds())
