"""``ksn_jobs``: manual backup/restore requests handed from the API to the
backup worker. Claimed with one statement (FOR UPDATE SKIP LOCKED), finished
with a compare-and-set on the state.

Every job carries the deadline of the request that asked for it: the worker
never claims a job past its deadline (it becomes ``expired``), and the API
marks a job it stopped waiting for ``cancelled`` (compare-and-set from
``queued``), so the answer the client got stays true.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from typing import Any

from psycopg2.extras import Json

from shared.store.rows import first_column
from shared.store.tables import JOBS

# The session-level advisory lock every backup, restore and drill holds
# ("ksnback"); shared/backup/locks.py takes it, the API only looks.
BACKUP_LOCK_KEY = 0x6B736E6261636B

FINISHED = ("succeeded", "failed", "expired", "cancelled")

# No job is started this close to its deadline (the API answers at it).
START_MARGIN_SECONDS = 0.5


@dataclass(frozen=True)
class Job:
    job_id: str
    kind: str
    state: str
    params: dict[str, Any]
    result: dict[str, Any] | None
    error: str | None
    seconds_left: float | None  # until the deadline, when read; None: no deadline


COLUMNS = (
    "job_id::text, kind, state, params, result, error,"
    " EXTRACT(EPOCH FROM (deadline - now()))::float8"
)


def enqueue(
    cur,
    kind: str,
    params: dict[str, Any],
    node_id: str | None = None,
    *,
    wait_seconds: float | None = None,
) -> str:
    """Queue a job for the worker of ``node_id`` (None: any node's worker),
    with a deadline ``wait_seconds`` from now (None: none)."""
    cur.execute(
        f"INSERT INTO {JOBS} (kind, params, node_id, deadline) VALUES"
        " (%s, %s, %s, now() + %s * interval '1 second') RETURNING job_id::text",
        (kind, Json(params), node_id, wait_seconds),
    )
    return cur.fetchone()[0]


def expire_overdue(cur) -> list[str]:
    """Queued jobs whose requester stopped waiting become ``expired``."""
    return first_column(
        cur,
        f"UPDATE {JOBS} SET state = 'expired', finished_at = now(), error = 'not started:"
        " its deadline passed before the backup worker could take it (the request had been"
        " answered)' WHERE state = 'queued' AND deadline <= now() RETURNING job_id::text",
    )


def claim(cur, node_id: str | None = None) -> Job | None:
    """Take the oldest queued job for this node (or for any node) with more
    than START_MARGIN_SECONDS left before its deadline, or None; at most one
    worker gets each job. A job in its last moment stays queued for the API
    to cancel: whatever the API answers at the deadline, a job is then either
    cancelled or long started."""
    cur.execute(
        f"UPDATE {JOBS} SET state = 'running', started_at = now(), claimed_by = %s"
        f" WHERE job_id = (SELECT job_id FROM {JOBS} WHERE state = 'queued'"
        "  AND (node_id IS NULL OR node_id = %s)"
        "  AND (deadline IS NULL OR deadline > now() + %s * interval '1 second')"
        "  ORDER BY created_at FOR UPDATE SKIP LOCKED LIMIT 1)"
        f" RETURNING {COLUMNS}",
        (f"{socket.gethostname()}:{os.getpid()}", node_id, START_MARGIN_SECONDS),
    )
    row = cur.fetchone()
    return Job(*row) if row else None


def finish(
    cur,
    job_id: str,
    *,
    result: dict[str, Any] | None = None,
    error: str | None = None,
    state: str | None = None,
) -> bool:
    """running → succeeded | failed (or ``state``, e.g. expired); False if
    the job was no longer running."""
    state = state or ("failed" if error is not None else "succeeded")
    cur.execute(
        f"UPDATE {JOBS} SET state = %s, result = coalesce(result, '{{}}'::jsonb) || %s,"
        " error = %s, finished_at = now() WHERE job_id = %s AND state = 'running'",
        (state, Json(result or {}), error, job_id),
    )
    return cur.rowcount == 1


def note(cur, job_id: str, info: dict[str, Any]) -> None:
    """Merge ``info`` into a running job's result (what a later recovery
    needs to know if this worker dies)."""
    cur.execute(
        f"UPDATE {JOBS} SET result = coalesce(result, '{{}}'::jsonb) || %s"
        " WHERE job_id = %s AND state = 'running'",
        (Json(info), job_id),
    )


def cancel(cur, job_id: str, reason: str) -> bool:
    """queued → cancelled; False when a worker already took it."""
    cur.execute(
        f"UPDATE {JOBS} SET state = 'cancelled', error = %s, finished_at = now()"
        " WHERE job_id = %s AND state = 'queued'",
        (reason, job_id),
    )
    return cur.rowcount == 1


def get(cur, job_id: str) -> Job | None:
    cur.execute(f"SELECT {COLUMNS} FROM {JOBS} WHERE job_id = %s", (job_id,))
    row = cur.fetchone()
    return Job(*row) if row else None


def running(cur) -> list[tuple[str, str, str | None, dict[str, Any] | None]]:
    """(job_id, kind, claimed_by, result) of every running job."""
    cur.execute(
        f"SELECT job_id::text, kind, claimed_by, result FROM {JOBS} WHERE state = 'running'"
    )
    return [tuple(row) for row in cur.fetchall()]


def busy_with(cur) -> str | None:
    """What holds the backup worker, if anything: 'backup' / 'restore' for a
    job queued or running, 'backup or drill' when the backup lock is held (a
    scheduled backup, a drill, the CLI or another node), else None."""
    cur.execute(
        f"SELECT kind FROM {JOBS} WHERE state = 'running' OR (state = 'queued'"
        " AND (deadline IS NULL OR deadline > now())) ORDER BY created_at LIMIT 1"
    )
    row = cur.fetchone()
    if row:
        return row[0]
    cur.execute(
        "SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND granted"
        " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
        " AND classid = %s AND objid = %s AND objsubid = 1)",
        (BACKUP_LOCK_KEY >> 32, BACKUP_LOCK_KEY & 0xFFFFFFFF),
    )
    return "backup or drill" if cur.fetchone()[0] else None
