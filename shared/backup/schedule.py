"""When the next automatic backup (and restore drill) is due, derived from
the history so restarts neither skip nor double one.

After a success the next backup is due BACKUP_INTERVAL_SECONDS after the
newest COMPLETED dump. After failures it is retried with a growing delay:
BACKUP_RETRY_MIN_SECONDS after the first failure, doubling with each further
consecutive failure, at most BACKUP_RETRY_MAX_SECONDS — never in a loop."""

from __future__ import annotations

import datetime as dt

from shared.store import drills, dumps


def retry_delay(failures: int, minimum: float, maximum: float) -> float:
    """Delay after ``failures`` consecutive failed attempts (1 → minimum)."""
    if failures <= 0:
        return 0.0
    return min(maximum, minimum * 2 ** min(failures - 1, 60))


def seconds_until_due(
    cur,
    interval_seconds: float,
    now: dt.datetime | None = None,
    *,
    retry_min: float = 60.0,
    retry_max: float = 3600.0,
) -> float:
    """0 when a backup is due now (also when there was never one)."""
    now = now or dt.datetime.now(dt.UTC)
    newest = dumps.newest_completed_at(cur)
    failures, last_failed = dumps.failures_since(cur, newest)
    if failures and last_failed is not None:  # a count > 0 comes with its newest time
        due = last_failed + dt.timedelta(seconds=retry_delay(failures, retry_min, retry_max))
        if newest is not None:
            due = max(due, newest + dt.timedelta(seconds=interval_seconds))
        return max(0.0, (due - now).total_seconds())
    if newest is None:
        return 0.0
    return max(0.0, (newest + dt.timedelta(seconds=interval_seconds) - now).total_seconds())


def drill_due(cur, interval_seconds: float, now: dt.datetime | None = None) -> bool:
    """A drill is due when drills are on and none ran within the interval."""
    if interval_seconds <= 0:
        return False
    last = drills.newest_at(cur)
    now = now or dt.datetime.now(dt.UTC)
    return last is None or (now - last).total_seconds() >= interval_seconds
