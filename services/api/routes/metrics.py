"""``GET /metrics`` (Prometheus text format) and the request hooks feeding it."""

from __future__ import annotations

import time

from flask import Blueprint, Response, current_app, g, request
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from services.api.ops.cr_metrics import CommitRevealMetrics
from services.api.ops.metrics import (
    NodeCollector,
    RequestMetrics,
    multiprocess_folder,
    scrape_registry,
)
from services.api.ops.public_views import public_registry
from services.api.ops.token import is_operator, token_required
from services.api.server.connection_metrics import ConnectionMetrics
from services.api.web.context import node

bp = Blueprint("metrics", __name__)


@bp.record_once
def _setup(state) -> None:
    app = state.app
    registry = CollectorRegistry()
    metrics = RequestMetrics(registry)
    db = getattr(app.extensions["ksnode"], "db", None)
    if db is not None:
        db.on_failover = metrics.failover_seen
    if multiprocess_folder() is None:
        registry.register(NodeCollector(app.extensions["ksnode"]))
    app.extensions["ksnode_metrics"] = (registry, metrics)
    app.extensions["ksnode_cr_metrics"] = CommitRevealMetrics(registry)
    # Counted by the HTTP server (limits.py), which serve() hands them to.
    app.extensions["ksnode_connection_metrics"] = ConnectionMetrics(registry)


@bp.after_app_request
def _record(response: Response) -> Response:
    started = g.get("started")  # set first thing by create_app's before_request
    if started is not None:
        rule = request.url_rule.rule if request.url_rule is not None else "unmatched"
        current_app.extensions["ksnode_metrics"][1].observe(
            rule, request.method, response.status_code, time.perf_counter() - started
        )
        cr = g.get("cr_audit")
        if cr is not None:
            current_app.extensions["ksnode_cr_metrics"].observe(cr, response)
    return response


@bp.get("/metrics")
def metrics() -> Response:
    """Everything for the operator's token. Anonymous: 401 when OPS_TOKEN is
    set (a scrape missing its token fails loudly, not with half the series);
    without OPS_TOKEN, only what anonymous /health says (public_views.py)."""
    ctx = node()
    if is_operator(request, ctx.config):
        registry, _ = current_app.extensions["ksnode_metrics"]
        body = generate_latest(scrape_registry(registry, ctx))
    elif ctx.config.ops_token:
        return token_required()
    else:
        body = generate_latest(public_registry(ctx))
    return Response(body, status=200, content_type=CONTENT_TYPE_LATEST)
