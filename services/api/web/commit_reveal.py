"""The reveal check of the protected v2 routes (spec commit-reveal §4, §5, §12).

``protected(api)`` wraps a v2 route: a request carrying ``cr_*`` fields is
checked in the reference's order, before the bearer middleware; one without
them is refused in ``required`` mode, and in ``optional`` mode only when its
token's hash is committed here (``refuse_committed_token``, also used by v1
get, register and reshare). The check leaves a ``Reveal`` in ``g``; the route records
it with ``record(cur)`` inside its own transaction, before the share leaves.

A Telegram login has many spellings that verify, and the committed hash is
of one spelling. So a Telegram reveal also binds the login itself
(``telegram.credential``) to the session's key when it is recorded: another
key's session revealing it later, or a bare request carrying it, is refused.
That defence holds from the user's own reveal here on: a re-spelled login
that gets here first is served, and the user's reveal that follows is
refused and logged as a possible replay (``_refuse_bound``).
"""

from __future__ import annotations

import functools
import hashlib
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NoReturn

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from flask import g

from services.api.auth import telegram
from services.api.auth.bearer import bearer_token, verifiers
from services.api.web.body import json_body
from services.api.web.context import node
from services.api.web.errors import ApiError
from services.api.web.jsvalues import js_string, js_truthy, js_utf8
from services.api.web.validate import hex_error
from shared.store import cr_sessions

log = logging.getLogger(__name__)

# operation_type -> (allowed APIs, final API), spec §5.
OPERATIONS: dict[str, tuple[tuple[str, ...], str]] = {
    "sign_in": (("get_key_shares",), "get_key_shares"),
    "sign_up": (("register",), "register"),
    "sign_in_reshare": (("get_key_shares", "reshare"), "reshare"),
    "register_reshare": (("get_key_shares", "reshare_register"), "reshare_register"),
    "add_ed25519": (("register_ed25519", "get_key_shares"), "get_key_shares"),
}
REQUIRED = "cr_session_id and cr_signature are required"
CREDENTIAL_BOUND = (
    "Telegram login already revealed in another session at this node (possible replay)"
)


@dataclass(frozen=True)
class Reveal:
    session_id: str
    api: str
    signature: bytes
    final: bool
    key: bytes  # the session's ephemeral public key
    credential: bytes | None  # a Telegram login's, bound when the call is recorded


def token_hash(auth_type: str, token: str) -> str:
    """Lowercase hex SHA-256 of auth_type ‖ token (the committed id_token_hash)."""
    return hashlib.sha256(js_utf8(auth_type) + js_utf8(token)).hexdigest()


def signed_digest(
    node_pubkey_hex: str, session_id: str, auth_type: str, token: str, operation: str, api: str
) -> bytes:
    """SHA-256 of the concatenation the client signs (§4.4), no separators."""
    message = node_pubkey_hex + session_id + auth_type + token + operation + api
    return hashlib.sha256(js_utf8(message)).digest()


def auth_type_text(body: dict[str, Any]) -> str:
    """auth_type as the reference renders it into the hash: null -> google."""
    raw = body.get("auth_type")
    return "google" if raw is None else js_string(raw)


def session_uuid(value: Any) -> str | None:
    """The canonical UUID of a session id, or None (the reference answers 500
    for what PostgreSQL cannot parse, W7; we answer 400)."""
    if not isinstance(value, str) or len(value) > 64:
        return None
    try:
        return str(uuid.UUID(value))
    except ValueError:
        return None


def note(**fields: str) -> None:
    """What the audit record and /metrics say about this call (never the
    token or the signature)."""
    g.cr_audit = {**g.get("cr_audit", {}), **fields}


def login_credential(body: dict[str, Any], token: str) -> bytes | None:
    """The Telegram login's credential (one for all its spellings), or None
    for the other providers, which pay nothing for it."""
    if body.get("auth_type") != "telegram":
        return None
    verifier = verifiers().get("telegram")
    if isinstance(verifier, telegram.TelegramVerifier):
        return verifier.credential(token)
    return telegram.credential(token)


def carries_cr(body: dict[str, Any]) -> bool:
    return body.get("cr_session_id") is not None or body.get("cr_signature") is not None


def verify(body: dict[str, Any], api: str) -> Reveal:
    """Steps 1-12 of §4.3, in order, with the reference's codes."""
    note(kind="reveal", api=api)
    raw_id, raw_sig = body.get("cr_session_id"), body.get("cr_signature")
    if not js_truthy(raw_id) or not js_truthy(raw_sig):
        raise ApiError("INVALID_REQUEST", REQUIRED)
    session_id = session_uuid(raw_id)
    if session_id is None:
        raise ApiError("INVALID_REQUEST", "Invalid cr_session_id: must be a UUID")
    db = node().db
    with db.cursor() as cur:
        session = cr_sessions.get(cur, session_id)
        if session is None:
            raise ApiError("SESSION_NOT_FOUND", "Session not found")
        note(session=session.session_id, operation=session.operation_type[:32])
        if session.state != "COMMITTED":
            raise ApiError("INVALID_REQUEST", f"Session is not in COMMITTED state: {session.state}")
        if session.expired:
            raise ApiError("SESSION_EXPIRED", "Session has expired")
        allowed = OPERATIONS.get(session.operation_type)
        if allowed is None or api not in allowed[0]:
            # An unknown operation (a reference-written row) is refused, not a crash (W1).
            raise ApiError(
                "INVALID_REQUEST",
                f'API "{api}" is not allowed for operation "{session.operation_type}"',
            )
        if cr_sessions.api_called(cur, session_id, api):
            raise ApiError(
                "API_ALREADY_CALLED", f'API "{api}" has already been called for this session'
            )
    problem = hex_error(raw_sig, 64)
    if problem is not None:
        raise ApiError("INVALID_SIGNATURE", f"Invalid signature format: {problem}")
    signature = bytes.fromhex(str(raw_sig))  # hex_error accepted it: a str
    token = bearer_token()
    if token is None:
        raise ApiError("UNAUTHORIZED", "Authorization header with Bearer token required")
    auth_type = auth_type_text(body)
    # W8: hashes are hex, compared as hex (case-insensitive).
    if token_hash(auth_type, token) != session.id_token_hash.lower():
        raise ApiError(
            "INVALID_REQUEST", "id_token_hash mismatch: token does not match committed session"
        )
    keypair = node().keypair
    node_pubkey = keypair.public_key_hex if keypair is not None else ""
    digest = signed_digest(node_pubkey, str(raw_id), auth_type, token, session.operation_type, api)
    try:
        Ed25519PublicKey.from_public_bytes(session.client_ephemeral_pubkey).verify(
            signature, digest
        )
    except (InvalidSignature, ValueError):
        raise ApiError("INVALID_SIGNATURE", "Invalid signature") from None
    return Reveal(
        session_id,
        api,
        signature,
        api == allowed[1],
        session.client_ephemeral_pubkey,
        login_credential(body, token),
    )


def refuse_committed_token() -> None:
    """``optional`` mode, a request without cr_* fields: served as before,
    unless its token's hash is committed here (a co-node replaying a token,
    W2). No token: the bearer check answers 401 as before."""
    token = bearer_token()
    if token is None:
        return
    with node().db.cursor() as cur:
        committed = cr_sessions.hash_committed(cur, *committed_marks(json_body(), token))
    if committed:
        _refuse_committed()


def _refuse_committed() -> None:
    """Answer a bare request whose token is committed here. The record names
    no identity, as when the check ran before authentication."""
    g.pop("identity", None)
    note(kind="bare", refused="committed")
    raise ApiError("INVALID_REQUEST", REQUIRED)


def _deferred(view: Callable, *args: Any, **kwargs: Any) -> Any:
    """Run a bare request with its committed-token check left to the
    route's statement (``deferred_marks()`` / ``refuse_if_committed``):
    one database round trip instead of two. The answers stay those of the
    check run first: if the route refuses the request before its lookup
    (authentication, a malformed key), the check runs then, and a committed
    token still gets INVALID_REQUEST rather than the route's error."""
    if bearer_token() is None:
        return view(*args, **kwargs)  # no token: the bearer check answers 401
    g.cr_deferred = True
    try:
        return view(*args, **kwargs)
    except ApiError:
        if g.pop("cr_deferred", False):
            refuse_committed_token()
        raise


def committed_marks(body: dict[str, Any], token: str) -> tuple[str, bytes | None]:
    """What a committed token is found by: the hash of its text and, for a
    Telegram login, its credential (every spelling of it)."""
    return token_hash(auth_type_text(body), token), login_credential(body, token)


def deferred_marks() -> tuple[str, bytes | None] | None:
    """The bearer token's ``committed_marks`` when this request's
    committed-token check is deferred to the lookup the route is about to
    run, else None."""
    if not g.pop("cr_deferred", False):
        return None
    token = bearer_token()
    assert token is not None  # _deferred checked it
    return committed_marks(json_body(), token)


def refuse_if_committed(committed: bool) -> None:
    if committed:
        _refuse_committed()


def protected(api: str) -> Callable:
    """Decorator of the five protected v2 routes."""

    def wrap(view: Callable) -> Callable:
        @functools.wraps(view)
        def checked(*args: Any, **kwargs: Any) -> Any:
            body = json_body()
            if carries_cr(body):
                g.reveal = verify(body, api)
            elif node().config.commit_reveal == "required":
                note(kind="bare", refused="required")
                raise ApiError("INVALID_REQUEST", REQUIRED)
            elif api == "get_key_shares":
                return _deferred(view, *args, **kwargs)
            else:
                refuse_committed_token()
            return view(*args, **kwargs)

        return checked

    return wrap


def bare_only(view: Callable) -> Callable:
    """Decorator of v1 get and reshare: no commit-reveal, but a committed
    token is not served there either (closing W2)."""

    @functools.wraps(view)
    def checked(*args: Any, **kwargs: Any) -> Any:
        refuse_committed_token()
        return view(*args, **kwargs)

    return checked


def bare_guarded(view: Callable) -> Callable:
    """Decorator of v1 get and register: bare_only, with the check made by
    the route's own statement (its share lookup, its registration), which
    takes ``deferred_marks()``."""

    @functools.wraps(view)
    def checked(*args: Any, **kwargs: Any) -> Any:
        return _deferred(view, *args, **kwargs)

    return checked


def record(cur) -> None:
    """Record this request's reveal inside the route's transaction: one
    concurrent call wins, the others get 409 and no share (W6)."""
    reveal: Reveal | None = g.get("reveal")
    if reveal is None:
        return
    try:
        cr_sessions.record_call(cur, reveal.session_id, reveal.api, reveal.signature, reveal.final)
        if reveal.credential is not None:
            cr_sessions.bind_credential(cur, reveal.credential, reveal.key, reveal.session_id)
    except cr_sessions.CredentialBound as exc:
        _refuse_bound(reveal, exc.session_id)
    except cr_sessions.AlreadyCalled:
        raise ApiError(
            "API_ALREADY_CALLED", f'API "{reveal.api}" has already been called for this session'
        ) from None
    except cr_sessions.NotCommitted as exc:
        raise ApiError(
            "INVALID_REQUEST", f"Session is not in COMMITTED state: {exc.state}"
        ) from None


def _refuse_bound(reveal: Reveal, bound_session: str) -> NoReturn:
    """A Telegram login revealed here in a session of another key: the one
    that revealed it first was served. Either this caller replays the user's
    login, or (a re-spelled login got here first) it is the user, and that
    earlier session was a replay that was served: the operator must see it."""
    note(refused="credential_bound")
    log.warning(
        "telegram login already revealed in another session: refused, possible replay",
        extra={
            "event": "cr.credential_replay",
            "session": reveal.session_id,
            "api": reveal.api,
            "bound_session": bound_session,
        },
    )
    raise ApiError("INVALID_REQUEST", CREDENTIAL_BOUND)
