"""The bearer middleware (spec §4.2): who is calling, in the reference's
exact check order. Routes call ``authenticate()`` first, so an
unauthenticated caller always gets the 401 before any body validation."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from flask import g, request

from services.api.auth.base import AuthFailure
from services.api.auth.providers import build_verifiers
from services.api.web.body import json_body
from services.api.web.context import node
from services.api.web.errors import ApiError
from services.api.web.jsvalues import js_string
from services.api.web.storable import USER_AUTH_ID_CHARS, text_problem

log = logging.getLogger(__name__)

PREFIX = "Bearer "


@dataclass(frozen=True)
class Identity:
    auth_type: str
    user_auth_id: str
    # Why user_auth_id cannot be stored (NUL, unpaired surrogate, longer than
    # the column), or None: checked once here, where the bearer is parsed.
    problem: str | None = None

    @property
    def lookup_key(self) -> tuple[str | None, str | None]:
        """(auth_type, user_auth_id) to look the user up by; an identity that
        could never have been stored matches no row (SQL NULL)."""
        return (None, None) if self.problem else (self.auth_type, self.user_auth_id)

    def require_storable(self) -> None:
        """Before creating the user: an unstorable identity is a 400, not a 500."""
        if self.problem is not None:
            raise ApiError("INVALID_REQUEST", f"user_auth_id cannot be stored: it {self.problem}")


def _checked(auth_type: str, user_auth_id: str) -> Identity:
    return Identity(auth_type, user_auth_id, text_problem(user_auth_id, USER_AUTH_ID_CHARS))


def _field(claims: dict[str, Any], name: str) -> str | None:
    value = claims.get(name)
    if value is None or value == "" or value is False:
        return None
    if isinstance(value, dict | list):
        return None
    return js_string(value)


def identity_from_claims(auth_type: str, claims: dict[str, Any]) -> Identity:
    """The user_auth_id of the §4.2 table; byte-identical to what Oko derives."""
    if auth_type == "google":
        sub, email = _field(claims, "sub"), _field(claims, "email")
        if not sub or not email:
            raise AuthFailure("Invalid token: missing required field (sub or email)")
        return _checked(auth_type, f"google_{sub}")
    if auth_type == "auth0":
        sub, email = _field(claims, "sub"), _field(claims, "email")
        if not email or not sub:
            raise AuthFailure("Invalid token: missing required field (email or sub)")
        return _checked(auth_type, email)
    user_id = _field(claims, "id")
    if not user_id:
        raise AuthFailure("Invalid token: missing required field (id)")
    return _checked(auth_type, f"{auth_type}_{user_id}")


def verifiers() -> dict[str, Any]:
    extras = node().extras
    found = extras.get("verifiers")
    if found is None:
        found = extras.setdefault("verifiers", build_verifiers(node().config))
    return found


def bearer_token() -> str | None:
    """The request's ``Authorization: Bearer`` token as the reference reads it
    (exact prefix, then trimmed), or None."""
    header = request.headers.get("Authorization")
    if header is None or not header.startswith(PREFIX):
        return None
    return header[len(PREFIX) :].strip()


def authenticate() -> Identity:
    body = json_body()
    raw_type = body.get("auth_type")
    auth_type = "google" if raw_type is None else raw_type
    token = bearer_token()
    if token is None:
        raise ApiError("UNAUTHORIZED", "Authorization header with Bearer token required")
    provider = verifiers().get(auth_type) if isinstance(auth_type, str) else None
    if provider is None:
        raise ApiError("UNAUTHORIZED", f"Invalid auth_type: {js_string(auth_type)}")
    try:
        claims = provider.verify(token)
        if not isinstance(claims, dict):
            raise AuthFailure("Token validation failed: unexpected provider answer")
        g.identity = identity_from_claims(auth_type, claims)  # for the audit record
        return g.identity
    except AuthFailure as failure:
        raise ApiError("UNAUTHORIZED", failure.msg) from None
    except Exception as exc:  # noqa: BLE001 - the reference answers 500 here; a 401 is right
        log.warning(
            "token validation error",
            extra={"event": "auth.error", "auth_type": auth_type, "error": type(exc).__name__},
        )
        raise ApiError("UNAUTHORIZED", "Token validation failed") from None
