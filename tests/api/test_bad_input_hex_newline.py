"""A hex field of the right length whose last character is a newline is
invalid hex, as in the reference (a JS ``$`` matches only at the end of the
text; Python's ``$`` also matches before a final newline, which let such a
value through to ``bytes.fromhex`` and a 500). Every hex field of every
route, the unauthenticated ones included, answers the reference's 400 and
changes nothing."""

from __future__ import annotations

import pytest

from tests.support.commit_reveal import CrSession
from tests.support.fakes.telegram import bearer
from tests.support.keyshare_helpers import (
    Wallet,
    ed_key,
    keyshare_bodies,
    secp_key,
    share_hex,
    table_counts,
)

INVALID_HEX = "Invalid hexadecimal string format."
ALL_ROUTES = list(keyshare_bodies("", "", "", ""))
SHARE_ROUTES = [r for r in ALL_ROUTES if r not in ("/keyshare/v1", "/keyshare/v1/check")]
SHARE_ROUTES = [r for r in SHARE_ROUTES if r not in ("/keyshare/v2", "/keyshare/v2/check")]


def newline_ended(size: int) -> str:
    """``size`` bytes' worth of characters: hex digits, the last one a newline."""
    return "a" * (2 * size - 1) + "\n"


def curve_of(route: str) -> str:
    return "ed25519" if route == "/keyshare/v2/register/ed25519" else "secp256k1"


def assert_400(response, code: str, msg: str) -> None:
    assert response.status_code == 400, response.text[:300]
    assert response.json() == {"success": False, "code": code, "msg": msg}


@pytest.mark.parametrize("route", ALL_ROUTES)
def test_a_public_key_ending_in_a_newline_is_invalid_hex(api, db, route):
    before = table_counts(db)
    curve = curve_of(route)
    value = newline_ended(33 if curve == "secp256k1" else 32)
    body = keyshare_bodies(value, share_hex(), value, share_hex())[route]
    r = api.post(route, json={"auth_type": "telegram", **body}, headers=bearer())
    if route.startswith("/keyshare/v1"):
        msg = f"Public key is not valid: {INVALID_HEX}"
    else:
        msg = f"Public key is not valid for {curve}: {INVALID_HEX}"
    assert_400(r, "PUBLIC_KEY_INVALID", msg)
    assert table_counts(db) == before


@pytest.mark.parametrize("route", SHARE_ROUTES)
def test_a_share_ending_in_a_newline_is_invalid_hex(api, db, route):
    before = table_counts(db)
    value = newline_ended(64)
    body = keyshare_bodies(secp_key(), value, ed_key(), value)[route]
    r = api.post(route, json={"auth_type": "telegram", **body}, headers=bearer())
    curve = curve_of(route)
    if route.startswith("/keyshare/v1") or route == "/keyshare/v2/register/ed25519":
        msg = f"Share is not valid: {INVALID_HEX}"
    else:
        msg = f"Share is not valid for {curve}: {INVALID_HEX}"
    assert_400(r, "SHARE_INVALID", msg)
    assert table_counts(db) == before


@pytest.fixture(scope="module")
def node_pubkey(api) -> str:
    return api.get("/status").json()["ks_node_public_key"]


@pytest.mark.parametrize("field", ["client_ephemeral_pubkey", "id_token_hash"])
def test_a_commit_field_ending_in_a_newline_is_invalid_hex(api, node_pubkey, field):
    s = CrSession(api, Wallet(api), "sign_in", node_pubkey)
    r = s.commit(**{field: newline_ended(32)})
    assert_400(r, "INVALID_REQUEST", f"Invalid {field}: {INVALID_HEX}")
    # nothing was stored: the same session commits cleanly afterwards
    assert s.commit().status_code == 200


def test_a_reveal_signature_ending_in_a_newline_is_invalid_hex(api, db, node_pubkey):
    s = CrSession(api, Wallet(api), "sign_up", node_pubkey)
    assert s.commit().status_code == 200
    before = table_counts(db)
    body = keyshare_bodies(secp_key(), share_hex(), ed_key(), share_hex())["/keyshare/v2/register"]
    r = s.call("/keyshare/v2/register", "register", body, cr_signature=newline_ended(64))
    assert_400(r, "INVALID_SIGNATURE", f"Invalid signature format: {INVALID_HEX}")
    assert table_counts(db) == before
    # the session was not spent: the well-signed call registers
    assert s.call("/keyshare/v2/register", "register", body).status_code == 200
