"""``/keyshare/v1`` routes (spec §5.1–§5.4), checks in the reference's order."""

from __future__ import annotations

from flask import Blueprint

from services.api.auth.bearer import authenticate
from services.api.ops import audit
from services.api.routes.shares import (
    confirm_reshare,
    decrypt_share,
    read_shares,
    unique_violation_as_duplicate,
)
from services.api.server.gate import outside_gate
from services.api.web.body import json_body
from services.api.web.commit_reveal import (
    bare_guarded,
    bare_only,
    deferred_marks,
    refuse_if_committed,
)
from services.api.web.context import node
from services.api.web.errors import ApiError, ok
from services.api.web.storable import lookup_identity
from services.api.web.validate import lookup_text, public_key, share, supported_curve
from shared.store import cr_sessions, registration, shares, users, wallets

bp = Blueprint("keyshare_v1", __name__, url_prefix="/keyshare/v1")


def _v1_curve(body: dict) -> str:
    """v1 picks the key length from curve_type: ed25519, else secp256k1."""
    return "ed25519" if body.get("curve_type") == "ed25519" else "secp256k1"


def _wallet_fields(body: dict) -> tuple[bytes, bytes, str]:
    """(public key, share, curve) of register/reshare, checked in that order."""
    key = public_key(body.get("public_key"), _v1_curve(body), "Public key is not valid")
    value = share(body.get("share"), "Share is not valid")
    return key, value, supported_curve(body)


@bp.post("/register")
@bare_guarded
def register():
    identity = authenticate()
    key, share_bytes, curve = _wallet_fields(json_body())
    identity.require_storable()
    ctx = node()
    # A token committed here for commit-reveal is refused (a co-node
    # replaying the user's sign-up token to plant its own share), checked by
    # the registration's own statement.
    marks = deferred_marks()
    with unique_violation_as_duplicate(f"Duplicate public key: {key.hex()}"):
        # The common case: one statement, its audit record written by it.
        record = audit.staged_record(ctx)
        with ctx.db.cursor() as cur:
            done = registration.register_wallet(
                cur,
                ctx.cipher,
                (identity.auth_type, identity.user_auth_id),
                curve,
                key,
                share_bytes.hex(),
                audit=record,
                waiting=outside_gate,
                guard=marks,
            )
        if done:
            audit.staged()
            return ok(with_data=False)
        with ctx.db.transaction() as cur:  # a taken key, a race, a committed token
            if marks is not None:
                refuse_if_committed(cr_sessions.hash_committed(cur, *marks))
            user_id = users.ensure(cur, identity.auth_type, identity.user_auth_id)
            owner = (user_id, identity.auth_type, identity.user_auth_id)
            wallets.create_with_share(cur, ctx.cipher, owner, curve, key, share_bytes.hex())
    return ok(with_data=False)


@bp.post("")
@bare_guarded
def get_share():
    identity = authenticate()
    body = json_body()
    key = public_key(body.get("public_key"), _v1_curve(body), "Public key is not valid")
    ctx = node()
    with ctx.db.cursor() as cur:
        user_id, (entry,) = read_shares(cur, identity.lookup_key, [key])
    if user_id is None:
        raise ApiError(
            "USER_NOT_FOUND",
            f"User not found: {identity.user_auth_id} (auth_type: {identity.auth_type})",
        )
    if entry.wallet_id is None:
        raise ApiError("WALLET_NOT_FOUND", f"Wallet not found: {key.hex()}")
    if entry.owner_id != user_id:
        raise ApiError("UNAUTHORIZED", "Unauthorized: wallet belongs to different user")
    if entry.enc_share is None:
        raise ApiError("KEY_SHARE_NOT_FOUND", "Key share not found")
    return ok({"share_id": entry.share_id, "share": decrypt_share(entry)})


@bp.post("/check")
def check():
    body = json_body()
    key = public_key(body.get("public_key"), _v1_curve(body), "Public key is not valid")
    user_auth_id = lookup_text(body, "user_auth_id")
    auth_type = lookup_text(body, "auth_type")
    if auth_type is None:  # `?? "google"`: an empty string stays, and names nobody
        auth_type = "google"
    with node().db.cursor() as cur:
        user_id, (entry,) = shares.lookup(cur, *lookup_identity(auth_type, user_auth_id), [key])
    if user_id is None or entry.wallet_id is None:
        return ok({"exists": False})
    if entry.owner_id != user_id:
        raise ApiError("PUBLIC_KEY_INVALID", "Public key is not valid")
    return ok({"exists": entry.share_id is not None})


@bp.post("/reshare")
@bare_only
def reshare():
    identity = authenticate()
    key, submitted, _ = _wallet_fields(json_body())
    ctx = node()
    with ctx.db.transaction() as cur:
        user_id, (entry,) = shares.lookup(cur, *identity.lookup_key, [key])
        # The reference checks the wallet before the user here (unlike get).
        if entry.wallet_id is None:
            raise ApiError("WALLET_NOT_FOUND", f"Wallet not found: {key.hex()}")
        if user_id is None:
            raise ApiError(
                "USER_NOT_FOUND",
                f"User not found: {identity.user_auth_id} (auth_type: {identity.auth_type})",
            )
        if entry.owner_id != user_id:
            raise ApiError("UNAUTHORIZED", "Unauthorized: wallet belongs to different user")
        if entry.enc_share is None:
            raise ApiError("KEY_SHARE_NOT_FOUND", "Key share not found")
        confirm_reshare(
            cur,
            entry,
            submitted,
            "New share does not match existing share",
            "Failed to updateReshare: no key share updated",
        )
    return ok(with_data=False)
