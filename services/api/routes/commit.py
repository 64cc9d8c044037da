"""``POST /keyshare/v2/commit`` (spec commit-reveal §3), also served at
``/commit-reveal/v2/commit`` (an upstream branch mounts both, §0).

The reference validates only the two hex fields and lets PostgreSQL refuse
the rest with a 500 (W7), and accepts any operation_type, which later stops
it (W1): here every field is checked and a mistake is a 400.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from flask import Blueprint

from services.api.web.body import json_body
from services.api.web.commit_reveal import OPERATIONS, note, session_uuid
from services.api.web.context import node
from services.api.web.errors import ApiError, json_response
from services.api.web.validate import parse_hex
from shared.keys.keypair import ServerKeypair
from shared.store import cr_sessions

log = logging.getLogger(__name__)

bp = Blueprint("commit", __name__)

HOUSEKEEPING_EVERY = 60.0  # seconds, per API process
# A run that hit its batch (cr_sessions.HOUSEKEEPING_BATCH) left rows behind:
# the next commit after this many seconds runs it again.
HOUSEKEEPING_BEHIND_EVERY = 5.0
_housekeeping = {"last": 0.0}
_housekeeping_lock = threading.Lock()


def sign_node_pubkey(seed: bytes, node_pubkey_hex: str) -> str:
    """Ed25519 over SHA-256 of the ASCII hex of the node's public key (§3.3)."""
    digest = hashlib.sha256(node_pubkey_hex.encode("ascii")).digest()
    return Ed25519PrivateKey.from_private_bytes(seed).sign(digest).hex()


def node_signature(keypair: ServerKeypair) -> str:
    """The same for every commit (W5), so computed once per keypair."""
    cache = node().extras.setdefault("cr_node_signature", {})
    found = cache.get(keypair.public_key_hex)
    if found is None:
        found = cache[keypair.public_key_hex] = sign_node_pubkey(
            keypair.seed, keypair.public_key_hex
        )
    return found


def housekeep_now_and_then() -> None:
    """Expired sessions are removed (their hashes stay reserved, their
    Telegram logins bound, their ids spent) at most once a minute per
    process, by the commit route: no other program needed. Each run is
    bounded; one that left rows behind is run again 5 s later."""
    now = time.monotonic()
    with _housekeeping_lock:
        if now - _housekeeping["last"] < HOUSEKEEPING_EVERY:
            return
        _housekeeping["last"] = now
    try:
        with node().db.transaction() as cur:
            sessions, reservations, credentials, spent = cr_sessions.housekeep(cur)
    except Exception as exc:  # noqa: BLE001 - the commit itself does not depend on it
        log.warning(
            "commit-reveal housekeeping failed",
            extra={"event": "cr.housekeeping_failed", "error": type(exc).__name__},
        )
        return
    behind = max(sessions, reservations, credentials, spent) >= cr_sessions.HOUSEKEEPING_BATCH
    if behind:
        with _housekeeping_lock:
            _housekeeping["last"] = (
                time.monotonic() - HOUSEKEEPING_EVERY + HOUSEKEEPING_BEHIND_EVERY
            )
    if sessions or reservations or credentials or spent:
        log.info(
            "commit-reveal housekeeping",
            extra={
                "event": "cr.housekeeping",
                "sessions": sessions,
                "reservations": reservations,
                "credentials": credentials,
                "spent_sessions": spent,
                "behind": behind,
            },
        )


def operation_type(body: dict) -> str:
    value = body.get("operation_type")
    if value is None:
        raise ApiError("INVALID_REQUEST", "operation_type is required")
    if not isinstance(value, str) or value not in OPERATIONS:
        raise ApiError(
            "INVALID_REQUEST", f"Invalid operation_type: must be one of {', '.join(OPERATIONS)}"
        )
    return value


@bp.post("/keyshare/v2/commit")
@bp.post("/commit-reveal/v2/commit")
def commit():
    note(kind="commit")
    body = json_body()
    key = parse_hex(
        body.get("client_ephemeral_pubkey"),
        32,
        "INVALID_REQUEST",
        "Invalid client_ephemeral_pubkey",
    )
    token_hash = parse_hex(
        body.get("id_token_hash"), 32, "INVALID_REQUEST", "Invalid id_token_hash"
    )
    raw_id = body.get("session_id")
    if raw_id is None:
        raise ApiError("INVALID_REQUEST", "session_id is required")
    session_id = session_uuid(raw_id)
    if session_id is None:
        raise ApiError("INVALID_REQUEST", "Invalid session_id: must be a UUID")
    operation = operation_type(body)
    note(session=session_id, operation=operation)
    ctx = node()
    if ctx.keypair is None:
        raise ApiError("UNKNOWN_ERROR", "Failed to sign node public key: no server keypair")
    housekeep_now_and_then()
    try:
        with ctx.db.transaction() as cur:
            # W8: stored in lower case, so one token is one hash whatever its spelling.
            cr_sessions.create(cur, session_id, operation, key, token_hash.hex())
    except cr_sessions.SessionExists:
        raise ApiError(
            "SESSION_ALREADY_EXISTS",
            "Session with this session_id, client_ephemeral_pubkey, or id_token_hash already exists",
        ) from None
    data = {
        "node_pubkey": ctx.keypair.public_key_hex,
        "node_signature": node_signature(ctx.keypair),
    }
    return json_response({"success": True, "data": data})
