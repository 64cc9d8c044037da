"""``GET /`` (liveness, spec §5.14), ``GET /status`` (spec §5.13) and our
``GET /health``."""

from __future__ import annotations

import logging
import threading
import time

from flask import Blueprint, Response, request

from services.api.ops.health import PROBE_DB_SECONDS, assess
from services.api.ops.public_views import public_health
from services.api.ops.token import is_operator
from services.api.web.context import node
from services.api.web.errors import json_response
from shared.db.pool import execute_prepared
from shared.store import heartbeats
from shared.store.tables import BACKUP_CHECKS, PG_DUMPS

bp = Blueprint("status", __name__)
log = logging.getLogger(__name__)

STATUS_SQL = (
    f"SELECT (SELECT ok FROM {BACKUP_CHECKS} ORDER BY check_id DESC LIMIT 1),"
    f" (SELECT created_at FROM {PG_DUMPS} WHERE status = 'COMPLETED'"
    "  ORDER BY created_at DESC LIMIT 1)"
)


@bp.get("/")
def liveness() -> Response:
    return Response("Ok", status=200, content_type="text/html; charset=utf-8")


class StatusProbe:
    """The database part of /status, read at most once per
    STATUS_CACHE_SECONDS per process: monitors and load balancers poll
    /status, and the answer need not cost a query each time."""

    def __init__(self, ttl: float):
        self.ttl = ttl
        self._lock = threading.Lock()
        self._value: tuple[bool, bool, str | None] = (False, False, None)
        self._read_at = float("-inf")

    def read(self, db) -> tuple[bool, bool, str | None]:
        now = time.monotonic()
        if now - self._read_at < self.ttl:
            return self._value
        with self._lock:
            if now - self._read_at < self.ttl:
                return self._value
            try:
                with db.cursor(timeout=PROBE_DB_SECONDS) as cur:
                    execute_prepared(cur, "ksn_status", STATUS_SQL, ())
                    check_ok, latest_at = cur.fetchone()
                value = (True, bool(check_ok), heartbeats.iso(latest_at))
            except Exception as exc:  # noqa: BLE001 - /status must always answer 200
                log.warning(
                    "status: database unavailable",
                    extra={"event": "status.db_error", "error": str(exc)[:200]},
                )
                value = (False, False, None)
            self._value, self._read_at = value, time.monotonic()
            return value


@bp.get("/status")
def status() -> Response:
    ctx = node()
    probe = ctx.extras.get("status_probe")
    if probe is None:
        probe = ctx.extras.setdefault("status_probe", StatusProbe(ctx.config.status_cache_seconds))
    connected, checked, latest = probe.read(ctx.db)
    return json_response(
        {
            "is_db_connected": connected,
            "is_db_backup_checked": checked,
            "latest_backup_time": latest,
            "ks_node_public_key": ctx.keypair.public_key_hex if ctx.keypair else None,
            "launch_time": heartbeats.iso(ctx.launch_time),
            "git_hash": ctx.git_hash,
            "version": ctx.version,
        }
    )


class PublicHealth:
    """Anonymous /health, assessed at most once per STATUS_CACHE_SECONDS (at
    least a second) per process. An assessment is several queries, and while
    the database is down it waits for its probes (seconds): anonymous callers
    must not be able to make every worker wait on them. While one caller
    assesses, the others get the previous answer at once."""

    def __init__(self, ttl: float):
        self.ttl = max(ttl, 1.0)
        self._lock = threading.Lock()
        self._body: dict | None = None
        self._read_at = float("-inf")

    def read(self, ctx) -> dict:
        body = self._body
        if body is not None and time.monotonic() - self._read_at < self.ttl:
            return body
        # Only the very first caller of a process waits for another's assessment.
        if not self._lock.acquire(blocking=body is None):
            assert body is not None
            return body
        try:
            if self._body is not None and time.monotonic() - self._read_at < self.ttl:
                return self._body
            self._body, self._read_at = public_health(assess(ctx)), time.monotonic()
            return self._body
        finally:
            self._lock.release()


@bp.get("/health")
def health() -> Response:
    """ok / degraded (200) / down (503), each reason named (services/api/ops/health.py);
    the details only for the operator's token (ops_token.py), assessed anew
    for each of its calls."""
    ctx = node()
    if is_operator(request, ctx.config):
        body = assess(ctx)
    else:
        public = ctx.extras.get("public_health")
        if public is None:
            public = ctx.extras.setdefault(
                "public_health", PublicHealth(ctx.config.status_cache_seconds)
            )
        body = public.read(ctx)
    return json_response(body, 503 if body["status"] == "down" else 200)
