"""``/keyshare/v2`` routes (spec §5.5–§5.10), checks in the reference's order.

Improvements that no client can notice except by not crashing: a missing
``wallets`` is a 400, every write is one transaction (a failed ed25519 step
also undoes the secp256k1 step), and registration races end in 409.
"""

from __future__ import annotations

from flask import Blueprint, g

from services.api.auth.bearer import Identity, authenticate
from services.api.routes.shares import (
    check_owned,
    confirm_reshare,
    decrypt_share,
    read_shares,
    unique_violation_as_duplicate,
)
from services.api.web.body import json_body
from services.api.web.commit_reveal import protected, record
from services.api.web.context import node
from services.api.web.errors import ApiError, ok
from services.api.web.jsvalues import js_truthy
from services.api.web.storable import lookup_identity
from services.api.web.validate import (
    CURVES,
    curve_entry,
    lookup_text,
    public_key,
    share,
    wallets_object,
)
from shared.store import shares, users, wallets

bp = Blueprint("keyshare_v2", __name__, url_prefix="/keyshare/v2")


def requested_keys(body: dict) -> dict[str, bytes]:
    """``wallets: {curve: "<hex>"}`` of get/check: curve -> public key bytes."""
    requested = wallets_object(body)
    keys: dict[str, bytes] = {}
    for curve in CURVES:
        value = requested.get(curve)
        if js_truthy(value):
            keys[curve] = public_key(value, curve, f"Public key is not valid for {curve}")
    return keys


def submitted_shares(body: dict) -> dict[str, tuple[bytes, bytes]]:
    """``wallets: {curve: {public_key, share}}``: curve -> (public key, share)."""
    requested = wallets_object(body)
    entries: dict[str, tuple[bytes, bytes]] = {}
    for curve in CURVES:
        entry = curve_entry(requested, curve)
        if entry is None:
            continue
        key = public_key(entry.get("public_key"), curve, f"Public key is not valid for {curve}")
        value = share(entry.get("share"), f"Share is not valid for {curve}")
        entries[curve] = (key, value)
    return entries


def caller_and_shares() -> tuple[Identity, dict[str, tuple[bytes, bytes]]]:
    """The caller and the shares the body submits, in the reference's order:
    the credential is checked before the body is read."""
    identity = authenticate()
    return identity, submitted_shares(json_body())


def register_all(identity: Identity, entries: dict[str, tuple[bytes, bytes]]) -> None:
    """Create the user if missing and every wallet + share, atomically."""
    identity.require_storable()
    ctx = node()
    with ctx.db.transaction() as cur:
        record(cur)  # the reveal's one-winner record, in the same transaction
        user_id = users.ensure(cur, identity.auth_type, identity.user_auth_id)
        for curve, (key, value) in entries.items():
            with unique_violation_as_duplicate(f"Duplicate public key for curve_type: {curve}"):
                owner = (user_id, identity.auth_type, identity.user_auth_id)
                wallets.create_with_share(cur, ctx.cipher, owner, curve, key, value.hex())


@bp.post("")
@protected("get_key_shares")
def get_shares():
    identity = authenticate()
    keys = requested_keys(json_body())
    # One transaction when a reveal is recorded: the shares leave only after
    # the record is committed (a failed record means no share).
    with node().db.transaction() if "reveal" in g else node().db.cursor() as cur:
        record(cur)
        user_id, entries = read_shares(cur, identity.lookup_key, list(keys.values()))
        if user_id is None:
            raise ApiError("USER_NOT_FOUND", "User not found")
        data = {}
        for curve, entry in zip(keys, entries, strict=True):
            check_owned(entry, user_id, curve)
            data[curve] = {"share_id": entry.share_id, "share": decrypt_share(entry)}
    return ok(data)


@bp.post("/check")
def check():
    body = json_body()
    keys = requested_keys(body)
    auth_type = lookup_text(body, "auth_type")  # no default here, unlike v1
    user_auth_id = lookup_text(body, "user_auth_id")
    with node().db.cursor() as cur:
        user_id, entries = shares.lookup(
            cur, *lookup_identity(auth_type, user_auth_id), list(keys.values())
        )
    data = {}
    for curve, entry in zip(keys, entries, strict=True):
        if user_id is None or entry.wallet_id is None:
            data[curve] = {"exists": False}
        elif entry.owner_id != user_id:
            raise ApiError("PUBLIC_KEY_INVALID", "Public key is not valid")
        else:
            data[curve] = {"exists": entry.share_id is not None}
    return ok(data)


@bp.post("/register")
@protected("register")
def register():
    identity, entries = caller_and_shares()
    if set(entries) != set(CURVES):
        raise ApiError("INVALID_REQUEST", "Both secp256k1 and ed25519 wallets are required")
    register_all(identity, entries)
    return ok(with_data=False)


@bp.post("/register/ed25519")
@protected("register_ed25519")
def register_ed25519():
    identity = authenticate()
    body = json_body()
    key = public_key(body.get("public_key"), "ed25519", "Public key is not valid for ed25519")
    value = share(body.get("share"), "Share is not valid")
    ctx = node()
    with unique_violation_as_duplicate("Duplicate public key for curve_type: ed25519"):
        with ctx.db.transaction() as cur:
            record(cur)
            user_id = users.find(cur, *identity.lookup_key)
            if user_id is None:
                raise ApiError("USER_NOT_FOUND", "User not found")
            if not wallets.user_has_curve(cur, user_id, "secp256k1"):
                raise ApiError(
                    "WALLET_NOT_FOUND", "secp256k1 wallet not found (not an existing user)"
                )
            # Found by exactly these two values: they are the user row's.
            owner = (user_id, identity.auth_type, identity.user_auth_id)
            wallets.create_with_share(cur, ctx.cipher, owner, "ed25519", key, value.hex())
    return ok(with_data=False)


@bp.post("/reshare")
@protected("reshare")
def reshare():
    identity, entries = caller_and_shares()
    ctx = node()
    with ctx.db.transaction() as cur:
        record(cur)
        user_id, found = shares.lookup(
            cur, *identity.lookup_key, [key for key, _ in entries.values()]
        )
        if user_id is None:
            raise ApiError("USER_NOT_FOUND", "User not found")
        for (curve, (_, submitted)), entry in zip(entries.items(), found, strict=True):
            check_owned(entry, user_id, curve)
            confirm_reshare(
                cur, entry, submitted, "Share mismatch", "Failed to update reshare timestamp"
            )
    return ok(with_data=False)


@bp.post("/reshare/register")
@protected("reshare_register")
def reshare_register():
    identity, entries = caller_and_shares()
    register_all(identity, entries)
    return ok(with_data=False)
