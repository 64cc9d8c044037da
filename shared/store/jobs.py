"""``ksn_jobs``: manual backup/restore requests handed from the API to the
backup worker. Claimed with one statement (FOR UPDATE SKIP LOCKED), finished
with a compare-and-set on the state."""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from typing import Any

from psycopg2.extras import Json

from shared.store.tables import JOBS


@dataclass(frozen=True)
class Job:
    job_id: str
    kind: str
    state: str
    params: dict[str, Any]
    result: dict[str, Any] | None
    error: str | None


COLUMNS = "job_id::text, kind, state, params, result, error"


def enqueue(cur, kind: str, params: dict[str, Any], node_id: str | None = None) -> str:
    """Queue a job for the worker of ``node_id`` (None: any node's worker)."""
    cur.execute(
        f"INSERT INTO {JOBS} (kind, params, node_id) VALUES (%s, %s, %s) RETURNING job_id::text",
        (kind, Json(params), node_id),
    )
    return cur.fetchone()[0]


def claim(cur, node_id: str | None = None) -> Job | None:
    """Take the oldest queued job for this node (or for any node), or None;
    at most one worker gets each job."""
    cur.execute(
        f"UPDATE {JOBS} SET state = 'running', started_at = now(), claimed_by = %s"
        f" WHERE job_id = (SELECT job_id FROM {JOBS} WHERE state = 'queued'"
        "  AND (node_id IS NULL OR node_id = %s)"
        "  ORDER BY created_at FOR UPDATE SKIP LOCKED LIMIT 1)"
        f" RETURNING {COLUMNS}",
        (f"{socket.gethostname()}:{os.getpid()}", node_id),
    )
    row = cur.fetchone()
    return Job(*row) if row else None


def finish(
    cur, job_id: str, *, result: dict[str, Any] | None = None, error: str | None = None
) -> bool:
    cur.execute(
        f"UPDATE {JOBS} SET state = %s, result = %s, error = %s, finished_at = now()"
        " WHERE job_id = %s AND state = 'running'",
        (
            "failed" if error is not None else "succeeded",
            Json(result) if result is not None else None,
            error,
            job_id,
        ),
    )
    return cur.rowcount == 1


def get(cur, job_id: str) -> Job | None:
    cur.execute(f"SELECT {COLUMNS} FROM {JOBS} WHERE job_id = %s", (job_id,))
    row = cur.fetchone()
    return Job(*row) if row else None
