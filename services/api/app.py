"""The Flask application factory."""

from __future__ import annotations

import datetime as dt
import itertools
import logging
import os
import secrets
import time

import psycopg2
from flask import Flask, Response, g, request
from werkzeug.exceptions import HTTPException, MethodNotAllowed

from services.api.routes.admin_backoff import AdminBackoff
from services.api.web.body import MAX_BODY_BYTES
from services.api.web.context import NodeContext
from services.api.web.errors import ApiError, error_response
from services.api.web.headers import CommonHeaders, is_preflight, preflight_response
from services.api.web.ratelimit import (
    FixedWindowLimiter,
    build_limiters,
    client_key,
    rate_limit_message,
)
from shared.db.pool import DatabaseUnavailable
from shared.infra.errortext import first_line
from shared.infra.logthrottle import LogThrottle

log = logging.getLogger("api")

# Request ids: a random tag per process and a counter; unique per node,
# cheaper than uuid4, and unlike the process id the tag tells a caller
# nothing about the host. Made again in each forked worker.
request_ids = itertools.count(1)
_process_tag = ""


def _new_process_tag() -> None:
    global _process_tag
    _process_tag = secrets.token_hex(3)


_new_process_tag()
os.register_at_fork(after_in_child=_new_process_tag)

HTTP_CODES = {
    404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    413: "PAYLOAD_TOO_LARGE",
    415: "UNSUPPORTED_MEDIA_TYPE",
    400: "INVALID_REQUEST",
}


class PathNormaliser:
    """WSGI middleware: paths match case-insensitively and with an optional
    trailing slash, like Express (spec §2.1). Every route of ours is
    lowercase, so lowercasing the path is exact."""

    def __init__(self, wsgi_app):
        self.wsgi_app = wsgi_app

    def __call__(self, environ, start_response):
        path = environ.get("PATH_INFO", "")
        if len(path) > 1 and path.endswith("/"):
            path = path.rstrip("/") or "/"
        environ["PATH_INFO"] = path.lower()
        return self.wsgi_app(environ, start_response)


def create_app(ctx: NodeContext) -> Flask:
    app = Flask(__name__)
    # Express matches "//" as written (a 404 here); werkzeug would answer an
    # HTML 308 to a merged path built from the client's Host header.
    app.url_map.merge_slashes = False
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY_BYTES
    app.json.compact = True  # type: ignore[attr-defined]
    app.extensions["ksnode"] = ctx
    app.wsgi_app = CommonHeaders(PathNormaliser(app.wsgi_app))  # type: ignore[method-assign]

    # A multi-process server passes limiters shared by its workers.
    limiters = ctx.extras.setdefault(
        "limiters", build_limiters(ctx.config.rate_limit_per_minute, FixedWindowLimiter)
    )
    limiter = limiters["global"]
    # Likewise the admin password back-off (made before the fork in server.py).
    ctx.extras.setdefault("admin_backoff", AdminBackoff(ctx.config.admin_backoff_max_seconds))

    @app.before_request
    def _begin():
        g.started = time.perf_counter()
        g.request_id = f"{_process_tag}-{next(request_ids):x}"
        if is_preflight(request):
            return preflight_response(request)
        if ctx.config.rate_limit_per_minute > 0:
            decision = limiter.hit(client_key(request, ctx.config))
            g.rate_headers = decision.headers
            if not decision.allowed:
                return error_response("RATE_LIMIT_EXCEEDED", rate_limit_message(decision.window))
        return None

    @app.after_request
    def _finish(response: Response) -> Response:
        for name, value in g.get("rate_headers", {}).items():
            response.headers[name] = value
        response.headers["X-Request-Id"] = g.get("request_id", "")
        return response

    @app.errorhandler(ApiError)
    def _api_error(exc: ApiError):
        return error_response(exc.code, exc.msg, exc.status)

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException):
        status = exc.code or 500
        if status == 404:
            msg = f"Cannot {request.method} {request.path}"
        elif status == 405:
            msg = f"Method {request.method} is not allowed on {request.path}"
        elif status == 413:
            msg = f"Request body is larger than {MAX_BODY_BYTES} bytes"
        else:
            msg = exc.name
        response = error_response(
            HTTP_CODES.get(status, "INVALID_REQUEST" if status < 500 else "UNKNOWN_ERROR"),
            msg,
            status,
        )
        if isinstance(exc, MethodNotAllowed) and exc.valid_methods:
            # RFC 9110: a 405 names the methods the resource takes
            response.headers["Allow"] = ", ".join(sorted(exc.valid_methods))
        return response

    outage_log = LogThrottle()

    @app.errorhandler(DatabaseUnavailable)
    @app.errorhandler(psycopg2.OperationalError)
    @app.errorhandler(psycopg2.InterfaceError)
    def _database_down(exc: Exception):
        left_out = outage_log.allow("request.db_unavailable")
        if left_out is not None:
            log.error(
                "database unavailable",
                extra={
                    "event": "request.db_unavailable",
                    "request_id": g.get("request_id", "-"),
                    "path": request.path,
                    "error": first_line(exc, 200),
                    "left_out": left_out,  # like lines of the last second, not written
                },
            )
        return error_response("SERVICE_UNAVAILABLE", "Database unavailable, please retry")

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception):
        request_id = g.get("request_id", "-")
        log.exception(
            "unhandled error",
            extra={
                "event": "request.error",
                "request_id": request_id,
                "path": request.path,
                "method": request.method,
            },
        )
        return error_response("UNKNOWN_ERROR", f"Internal server error (request id {request_id})")

    from services.api.routes import register_blueprints

    register_blueprints(app)
    from services.api.ops import audit

    audit.install(app, ctx)
    return app


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)
