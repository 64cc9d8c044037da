"""Admin checks for the backup routes: per-route rate limits and the admin
password (spec §4.8), compared in constant time."""

from __future__ import annotations

import functools
import hashlib
import hmac
from collections.abc import Callable
from typing import Any

from flask import g, request

from services.api.server.gate import outside_gate
from services.api.web.context import node
from services.api.web.errors import ApiError, error_response
from services.api.web.ratelimit import client_key, rate_limit_message
from services.api.web.storable import utf8_encodable
from shared.config import EXAMPLE_ADMIN_PASSWORD

SALT = b"ksn-admin-auth"
ITERATIONS = 100_000
ADMIN_DISABLED_MSG = "admin routes are disabled: ADMIN_PASSWORD is not set"
ADMIN_EXAMPLE_MSG = (
    "admin routes are disabled: ADMIN_PASSWORD is the operator guide's example value; "
    "set a long random one"
)


def admin_disabled_message(config) -> str | None:
    """Why the admin routes refuse every call, or None when they are on. The
    guide's example password is published: it would open backups and
    restores to anyone reaching the port, so it counts as none."""
    if not config.admin_password:
        return ADMIN_DISABLED_MSG
    if config.admin_password == EXAMPLE_ADMIN_PASSWORD:
        return ADMIN_EXAMPLE_MSG
    return None


def _derive(password: bytes) -> bytes:
    # ~0.1 s of C that releases the GIL: let the worker's other requests run meanwhile.
    with outside_gate():
        return hashlib.pbkdf2_hmac("sha256", password, SALT, ITERATIONS, 32)


def check_route_limit(name: str) -> Any | None:
    """None, or the 429 response when this client exceeded the route's limit.
    The admin limits hold whatever RATE_LIMIT_PER_MINUTE says: with the
    general limit off (0) they are all that slows password guessing."""
    ctx = node()
    if ctx.config.rate_limit_per_minute <= 0 and not ctx.config.admin_limits:
        return None
    decision = ctx.extras["limiters"][name].hit(client_key(request, ctx.config))
    g.rate_headers = decision.headers  # the route's limiter speaks last, like the reference
    if not decision.allowed:
        return error_response("RATE_LIMIT_EXCEEDED", rate_limit_message(decision.window))
    return None


def route_limited(name: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorate an admin route: it answers the 429 of check_route_limit(name)
    instead of running. Placed under ``@bp.post``, so the limit is counted
    before the body is read or the password checked."""

    def wrap(view: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(view)
        def limited_view(*args: Any, **kwargs: Any) -> Any:
            refused = check_route_limit(name)
            return refused if refused is not None else view(*args, **kwargs)

        return limited_view

    return wrap


def warn_if_disabled(config, program_log) -> None:
    """At start: say plainly that the admin routes will refuse every call."""
    message = admin_disabled_message(config)
    if message:
        program_log.warning(message, extra={"event": "admin.disabled"})


def require_admin_password(body: dict) -> None:
    ctx = node()
    disabled = admin_disabled_message(ctx.config)
    if disabled:
        raise ApiError("ADMIN_DISABLED", disabled)
    password = body.get("password")
    if not isinstance(password, str) or password == "":
        raise ApiError("UNAUTHORIZED", "Admin password is required")
    if not admin_password_matches(password):
        raise ApiError("UNAUTHORIZED", "Invalid admin password")


def admin_password_matches(password: str, *, refuse_in_backoff: bool = True) -> bool:
    """True when ``password`` is ADMIN_PASSWORD (constant time, PBKDF2 as above).
    A client in back-off after wrong passwords gets 429 before any PBKDF2 runs
    (or, ``refuse_in_backoff`` False, False without a check: the public
    history answers its anonymous view then, as for a wrong password)."""
    ctx = node()
    if admin_disabled_message(ctx.config):
        return False
    backoff = ctx.extras.get("admin_backoff") if ctx.config.admin_limits else None
    client = client_key(request, ctx.config)
    if backoff is not None:
        wait = backoff.admit(client)  # before any PBKDF2: a client in back-off costs nothing
        if wait:
            if not refuse_in_backoff:
                return False
            g.rate_headers = {**g.get("rate_headers", {}), "Retry-After": str(wait)}
            raise ApiError("RATE_LIMIT_EXCEEDED", rate_limit_message(wait))
    matches = _password_matches(ctx, password)
    if matches and backoff is not None:
        backoff.succeeded(client)
    return matches


def _password_matches(ctx, password: str) -> bool:
    expected = ctx.extras.get("admin_password_key")
    if expected is None:
        # surrogateescape: the environment's own bytes, even if not UTF-8
        configured = str(ctx.config.admin_password).encode("utf-8", "surrogateescape")
        expected = ctx.extras.setdefault("admin_password_key", _derive(configured))
    # A password that is not Unicode text (an unpaired surrogate) matches nothing.
    return (
        expected is not None
        and utf8_encodable(password)
        and hmac.compare_digest(_derive(password.encode("utf-8")), expected)
    )
