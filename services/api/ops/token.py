"""The operator credential (OPS_TOKEN): what separates the operator's monitor
from an anonymous caller on /health, /metrics and the backup history.

The peer's address is no credential: behind the recommended reverse proxy
every connection comes from loopback. So the only proof is the token, sent as
``Authorization: Bearer <token>`` (what Prometheus' ``authorization:`` and
``bearer_token_file`` send). It is never logged and never echoed.
"""

from __future__ import annotations

import hashlib
import hmac

from flask import Request, Response

from services.api.web.errors import error_response

OPS_TOKEN_REQUIRED_MSG = "this route needs the operator token (Authorization: Bearer <OPS_TOKEN>)"


def _digest(value: str) -> bytes:
    # Hashing first makes the comparison's time independent of both lengths.
    return hashlib.sha256(value.encode("utf-8", "surrogateescape")).digest()


def presented_token(request: Request) -> str | None:
    """The bearer token of the request, or None (another scheme, or none)."""
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() != "bearer":
        return None
    token = token.strip()
    return token or None


def is_operator(request: Request, config) -> bool:
    """True when OPS_TOKEN is set and the request carries it. A wrong or
    missing token is simply anonymous: no error, no hint which part was wrong."""
    expected = str(config.ops_token or "")
    presented = presented_token(request)
    if not expected or presented is None:
        return False
    return hmac.compare_digest(_digest(presented), _digest(expected))


def token_required() -> Response:
    """The 401 answered to an anonymous /metrics scrape when OPS_TOKEN is set."""
    return error_response("UNAUTHORIZED", OPS_TOKEN_REQUIRED_MSG)


def note_if_unset(config, program_log) -> None:
    """At start: say why /health and /metrics show so little without OPS_TOKEN."""
    if not config.ops_token:
        program_log.info(
            "OPS_TOKEN is not set: /health and /metrics show status and reason names only",
            extra={"event": "ops_token.unset"},
        )
