"""``/pg_dump/v1`` admin routes (spec §5.11–§5.12, design §11).

The API never runs pg_dump: backup and restore become a ``ksn_jobs`` row
that the backup worker claims; the request waits (bounded) for the result so
the seed's curl examples behave as documented.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from flask import Blueprint, request

from services.api.ops.health import is_running
from services.api.ops.public_views import public_history_row
from services.api.ops.token import is_operator
from services.api.routes.admin import (
    admin_password_matches,
    require_admin_password,
    route_limited,
)
from services.api.server.gate import outside_gate
from services.api.web.body import json_body
from services.api.web.context import node
from services.api.web.errors import ApiError, ok
from services.api.web.storable import text_problem
from shared.backup.paths import UnsafeDumpPath, resolve_dump_path
from shared.store import dumps, heartbeats, jobs

bp = Blueprint("pg_dump", __name__, url_prefix="/pg_dump/v1")


def run_job(kind: str, params: dict[str, Any]) -> jobs.Job:
    """Queue a job carrying this request's deadline and wait for it. When the
    wait runs out, a job not started yet is cancelled (compare-and-set), so
    it never runs after this answer. A backup already running is reported as
    such; a restore already running is waited for (see below)."""
    ctx = node()
    wait = ctx.config.backup_job_timeout_seconds
    down = worker_starts(min(STARTING_GRACE_SECONDS, wait))
    if down is not None:
        raise ApiError("BACKUP_WORKER_DOWN", worker_down(kind, down, "nothing was queued"))
    with ctx.db.cursor() as cur:
        # This node's worker: the dump lands on, or is read from, this node's DUMP_DIR.
        job_id = jobs.enqueue(cur, kind, params, ctx.config.effective_node_id, wait_seconds=wait)
    deadline = time.monotonic() + wait
    watch = WorkerWatch()
    job = wait_for(job_id, lambda: time.monotonic() < deadline and watch.alive())
    if job is None:
        reason = f"not started within {wait:g} s" if watch.beating else "the backup worker stopped"
        with ctx.db.cursor() as cur:
            cancelled = jobs.cancel(cur, job_id, f"cancelled: {reason}")
        if cancelled and watch.down is not None:
            raise ApiError(
                "BACKUP_WORKER_DOWN",
                worker_down(
                    kind, watch.down, f"the job was cancelled (job {job_id}); nothing was done"
                ),
            )
        if cancelled:
            raise ApiError(
                "BACKUP_TIMEOUT",
                f"The {kind} did not start within {wait:g} s and was cancelled "
                f"(job {job_id}); nothing was done",
            )
        # Started in time but not finished. A running restore may already be
        # replacing tables: answering now would let it complete after the
        # answer, and shares registered in between would be lost without the
        # requester knowing. So the request waits for it to end, for as long
        # as this node's worker is alive to end it.
        job = wait_for(job_id, worker_alive if kind == "restore" else lambda: False)
    if job is None:
        raise ApiError(
            "BACKUP_TIMEOUT",
            f"The {kind} started but did not finish within {wait:g} s (job {job_id}); "
            "see /pg_dump/v1/get_backup_history for its outcome",
        )
    if job.state in ("expired", "cancelled"):
        raise ApiError("BACKUP_TIMEOUT", f"The {kind} was not started: {job.error}")
    return job


def wait_for(job_id: str, keep_waiting: Callable[[], bool]) -> jobs.Job | None:
    """The job once finished, or None when ``keep_waiting`` says to stop first."""
    ctx = node()
    delay = 0.05
    while True:
        with ctx.db.cursor() as cur:
            job = jobs.get(cur, job_id)
        if job is not None and job.state in jobs.FINISHED:
            return job
        if not keep_waiting():
            return None
        with outside_gate():  # no connection is held here: other requests may run
            time.sleep(delay)
        delay = min(delay * 1.5, 1.0)


def worker_down(kind: str, down: WorkerDown, outcome: str) -> str:
    return (
        f"This node's backup worker is not running ({down.why}), so the {kind} cannot "
        f"run: {outcome}. See `supervisorctl status` and its log in LOG_DIR"
    )


STARTING_GRACE_SECONDS = 10.0


def worker_starts(grace: float) -> WorkerDown | None:
    """None when this node's backup worker beats, or starts beating within
    ``grace`` seconds (right after `ksnode up`, or a restart by supervisord,
    the API may answer before the worker's first beat); else why not. A
    clean stop older than ``grace`` is no restart under way: not waited for."""
    deadline = time.monotonic() + grace
    while (down := worker_state()) is not None:
        if time.monotonic() >= deadline or down.stopped_for >= grace:
            return down
        with outside_gate():  # no connection is held here: other requests may run
            time.sleep(0.5)
    return None


class WorkerWatch:
    """While a request waits for its job: is this node's backup worker still
    beating? Asked at most every WATCH_SECONDS (one small query), so a worker
    that stopped meanwhile ends the wait within its staleness bound instead
    of the whole BACKUP_JOB_TIMEOUT_SECONDS."""

    WATCH_SECONDS = 2.0

    def __init__(self) -> None:
        self.down: WorkerDown | None = None  # what the last look found
        self._next = time.monotonic() + self.WATCH_SECONDS

    @property
    def beating(self) -> bool:
        return self.down is None

    def alive(self) -> bool:
        if time.monotonic() >= self._next:
            self.down = worker_state()
            self._next = time.monotonic() + self.WATCH_SECONDS
        return self.beating


def worker_alive() -> bool:
    """This node's backup worker beat recently (it beats from its own thread,
    also while pg_restore runs). A dead worker's restore is settled by the
    next one (services/backup_worker/recovery.py)."""
    return worker_state() is None


@dataclass(frozen=True)
class WorkerDown:
    """Why this node's backup worker is not running, from its heartbeat row."""

    why: str  # for the operator reading the answer
    stopped_for: float = -1.0  # seconds since a clean stop; -1: it did not stop cleanly


def worker_state() -> WorkerDown | None:
    """None when this node's backup worker is running, else why not."""
    ctx = node()
    with ctx.db.cursor() as cur:
        beat = heartbeats.all_beats(cur, ctx.config.effective_node_id).get("backup_worker")
    if is_running(beat, ctx.config.heartbeat_interval_seconds):
        return None
    if beat is None:
        return WorkerDown("it never beat on this node")
    if beat["stopped_at"] is not None:
        return WorkerDown(
            f"stopped cleanly at {beat['stopped_at']}; `ksnode ctl start backup_worker`",
            beat["stopped_age_seconds"],
        )
    return WorkerDown(f"no heartbeat for {beat['age_seconds']:.0f} s")


@bp.post("/backup")
@route_limited("backup")
def backup():
    require_admin_password(json_body())
    job = run_job("backup", {})
    if job.state != "succeeded" or job.result is None:
        raise ApiError("PG_DUMP_FAILED", job.error or "backup failed")
    return ok({key: job.result[key] for key in ("dumpId", "dumpPath", "dumpSize", "dumpDuration")})


@bp.post("/restore")
@route_limited("restore")
def restore():
    body = json_body()
    require_admin_password(body)
    raw = body.get("dump_path")
    if not isinstance(raw, str) or raw == "":
        raise ApiError("INVALID_DUMP_PATH", "dump_path parameter is required")
    try:
        real = resolve_dump_path(raw, node().config.effective_dump_dir)
    except UnsafeDumpPath as exc:
        raise ApiError(exc.code, exc.msg + other_node_hint(raw)) from None
    if text_problem(str(real)):  # a file name that is not UTF-8 cannot go into the job row
        raise ApiError("INVALID_DUMP_FILE", f"Dump file name is not UTF-8 text: {raw}")
    with node().db.cursor() as cur:
        busy = jobs.busy_with(cur)
    if busy is not None:
        raise ApiError(
            "BACKUP_BUSY",
            f"A {busy} is running or queued; retry the restore when it is done",
        )
    job = run_job("restore", {"dump_path": str(real)})
    if job.state != "succeeded":
        raise ApiError("PG_RESTORE_FAILED", job.error or "restore failed")
    return ok({"dump_path": raw})


def other_node_hint(raw: str) -> str:
    """Why a dump listed in the shared history is not restorable here: another
    node wrote it to its own DUMP_DIR, and only that node's worker reads it."""
    ctx = node()
    if text_problem(raw):  # not storable text: no history row can name it
        return ""
    with ctx.db.cursor() as cur:
        holder = dumps.holder(cur, raw)
    if holder is None or holder == ctx.config.effective_node_id:
        return ""
    return f"; this dump is held by node {holder}: restore it through that node"


def parse_days(body: dict) -> float | None:
    """Absent → all rows; else a number (or numeric string) from 1 to 1000."""
    if "days" not in body or body["days"] is None:
        return None
    value = body["days"]
    if isinstance(value, str):
        try:
            value = float(value.strip())
        except ValueError:
            value = None
    if isinstance(value, bool) or not isinstance(value, int | float) or not 1 <= value <= 1000:
        raise ApiError("INVALID_DAYS", "Days parameter must be between 1 and 1000")
    return float(value)


@bp.post("/get_backup_history")
@route_limited("history")
def get_backup_history():
    body = json_body()
    days = parse_days(body)
    with node().db.cursor() as cur:
        rows = dumps.history(cur, days)
    if history_details_allowed(body):
        return ok([row.as_json() for row in rows])
    return ok([public_history_row(row.as_json()) for row in rows])


def history_details_allowed(body: dict) -> bool:
    """The history's extra meta (sha256, verified, tables, node_id, reason) for
    the operator's token or the admin password; a wrong one is anonymous, as
    the reference ignores a password here and answers 200."""
    ctx = node()
    if is_operator(request, ctx.config):
        return True
    password = body.get("password")
    return (
        isinstance(password, str)
        and password != ""
        and admin_password_matches(password, refuse_in_backoff=False)
    )
