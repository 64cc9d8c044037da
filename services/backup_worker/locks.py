"""One backup or restore at a time across workers and nodes sharing the
database: a session-level Postgres advisory lock on a dedicated connection."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from services.backup_worker.errors import BusyError
from shared.config import Config
from shared.db import connect

BACKUP_LOCK_KEY = 0x6B736E6261636B  # "ksnback"


@contextmanager
def backup_lock(config: Config, *, wait: bool) -> Iterator[None]:
    """Hold the lock for the block; ``wait=False`` raises BusyError if taken."""
    conn = connect(config, autocommit=True)
    try:
        with conn.cursor() as cur:
            if wait:
                cur.execute("SELECT pg_advisory_lock(%s)", (BACKUP_LOCK_KEY,))
            else:
                cur.execute("SELECT pg_try_advisory_lock(%s)", (BACKUP_LOCK_KEY,))
                if not cur.fetchone()[0]:
                    raise BusyError("another backup or restore is running")
        try:
            yield
        finally:
            with conn.cursor() as cur:
                cur.execute("SELECT pg_advisory_unlock(%s)", (BACKUP_LOCK_KEY,))
    finally:
        conn.close()
