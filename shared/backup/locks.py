"""One backup or restore at a time across workers and nodes sharing the
database: a session-level Postgres advisory lock on a dedicated connection."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

from shared.backup.errors import BusyError
from shared.config import Config
from shared.db.pool import connect
from shared.store.jobs import BACKUP_LOCK_KEY


@contextmanager
def backup_lock(config: Config, *, wait: bool, until: float | None = None) -> Iterator[None]:
    """Hold the lock for the block. ``wait=False`` raises BusyError if taken;
    ``until`` (a time.monotonic() value) waits at most that long, then raises
    BusyError — a job must not start after its requester stopped waiting."""
    conn = connect(config, autocommit=True)
    try:
        with conn.cursor() as cur:
            if wait and until is None:
                cur.execute("SELECT pg_advisory_lock(%s)", (BACKUP_LOCK_KEY,))
            else:
                delay = 0.05
                while True:
                    cur.execute("SELECT pg_try_advisory_lock(%s)", (BACKUP_LOCK_KEY,))
                    if cur.fetchone()[0]:
                        break
                    if not wait or until is None or time.monotonic() + delay >= until:
                        raise BusyError("another backup or restore is running")
                    time.sleep(delay)
                    delay = min(delay * 2, 1.0)
        try:
            yield
        finally:
            with conn.cursor() as cur:
                cur.execute("SELECT pg_advisory_unlock(%s)", (BACKUP_LOCK_KEY,))
    finally:
        conn.close()
