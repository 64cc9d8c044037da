"""/keyshare/v1: register, get, check, reshare (spec §5.1–§5.4)."""

import pytest

from tests.support.keyshare_helpers import Wallet, ed_key, secp_key, share_hex


@pytest.fixture()
def alice(api):
    return Wallet(api)


def register(wallet, key, share, curve="secp256k1"):
    return wallet.post(
        "/keyshare/v1/register", {"curve_type": curve, "public_key": key, "share": share}
    )


def test_register_then_get_returns_the_share_byte_for_byte(alice):
    key, share = secp_key(), share_hex().upper()
    r = register(alice, key, share)
    assert (r.status_code, r.content) == (200, b'{"success":true}')
    got = alice.post("/keyshare/v1/", {"public_key": key})  # the real client omits curve_type
    assert got.status_code == 200
    body = got.json()
    assert list(body) == ["success", "data"] and list(body["data"]) == ["share_id", "share"]
    assert body["data"]["share"] == share.lower()
    assert got.content == (
        b'{"success":true,"data":{"share_id":"'
        + body["data"]["share_id"].encode()
        + b'","share":"'
        + share.lower().encode()
        + b'"}}'
    )
    assert got.headers["Content-Type"] == "application/json; charset=utf-8"


def test_get_without_trailing_slash_and_ed25519(alice):
    key = ed_key()
    assert register(alice, key, share_hex(), "ed25519").status_code == 200
    assert (
        alice.post("/keyshare/v1", {"public_key": key, "curve_type": "ed25519"}).status_code == 200
    )


def test_register_duplicate_is_409_with_lowercase_key(alice, api):
    key = secp_key().upper().replace("0X", "")
    assert register(alice, key, share_hex()).status_code == 200
    r = register(Wallet(api), key, share_hex())
    assert r.status_code == 409
    assert r.json() == {
        "success": False,
        "code": "DUPLICATE_PUBLIC_KEY",
        "msg": f"Duplicate public key: {key.lower()}",
    }


@pytest.mark.parametrize(
    "body,code,msg",
    [
        (
            {"curve_type": "secp256k1", "public_key": "abcd", "share": "00" * 64},
            "PUBLIC_KEY_INVALID",
            "Public key is not valid: Invalid length. Expected: 66 characters, Actual: 4",
        ),
        (
            {"curve_type": "ed25519", "public_key": "02" + "00" * 32, "share": "00" * 64},
            "PUBLIC_KEY_INVALID",
            "Public key is not valid: Invalid length. Expected: 64 characters, Actual: 66",
        ),
        (
            {"curve_type": "secp256k1", "public_key": "0x" + "00" * 32, "share": "00" * 64},
            "PUBLIC_KEY_INVALID",
            "Public key is not valid: Invalid hexadecimal string format.",
        ),
        (
            {"curve_type": "secp256k1", "public_key": 5, "share": "00" * 64},
            "PUBLIC_KEY_INVALID",
            "Public key is not valid: Input must be a string.",
        ),
        (
            {"curve_type": "secp256k1", "public_key": "", "share": "00" * 64},
            "PUBLIC_KEY_INVALID",
            "Public key is not valid: Invalid length or invalid bytesLength. Expected: > 0",
        ),
        (
            {"curve_type": "secp256k1", "public_key": "02" + "00" * 32, "share": "zz" * 64},
            "SHARE_INVALID",
            "Share is not valid: Invalid hexadecimal string format.",
        ),
        (
            {"curve_type": "bls", "public_key": "02" + "00" * 32, "share": "00" * 64},
            "CURVE_TYPE_NOT_SUPPORTED",
            "Curve type not supported: bls",
        ),
        (
            {"public_key": "02" + "00" * 32, "share": "00" * 64},
            "CURVE_TYPE_NOT_SUPPORTED",
            "Curve type not supported: undefined",
        ),
    ],
)
def test_register_errors_in_check_order(alice, body, code, msg):
    r = alice.post("/keyshare/v1/register", body)
    assert r.status_code == 400
    assert r.json() == {"success": False, "code": code, "msg": msg}


def test_get_errors(alice, api):
    key = secp_key()
    stranger = Wallet(api)
    r = stranger.post("/keyshare/v1", {"public_key": key})
    assert r.status_code == 404 and r.json()["code"] == "USER_NOT_FOUND"
    assert r.json()["msg"] == f"User not found: {stranger.user_auth_id} (auth_type: telegram)"
    register(alice, key, share_hex())
    r = alice.post("/keyshare/v1", {"public_key": secp_key()})
    assert r.status_code == 404 and r.json()["code"] == "WALLET_NOT_FOUND"
    register(stranger, secp_key(), share_hex())
    r = stranger.post("/keyshare/v1", {"public_key": key})
    assert r.status_code == 401
    assert r.json()["msg"] == "Unauthorized: wallet belongs to different user"


def test_check_exists_and_foreign_key(alice, api):
    key = secp_key()
    body = {
        "user_auth_id": alice.user_auth_id,
        "auth_type": "telegram",
        "curve_type": "secp256k1",
        "public_key": key,
    }
    r = api.post("/keyshare/v1/check", json=body)
    assert r.content == b'{"success":true,"data":{"exists":false}}'
    register(alice, key, share_hex())
    assert api.post("/keyshare/v1/check", json=body).json() == {
        "success": True,
        "data": {"exists": True},
    }
    other = Wallet(api)
    register(other, secp_key(), share_hex())
    r = api.post("/keyshare/v1/check", json={**body, "user_auth_id": other.user_auth_id})
    assert r.status_code == 400
    assert r.json() == {
        "success": False,
        "code": "PUBLIC_KEY_INVALID",
        "msg": "Public key is not valid",
    }


def test_check_defaults_auth_type_to_google(api):
    r = api.post("/keyshare/v1/check", json={"user_auth_id": "google_1", "public_key": secp_key()})
    assert r.json() == {"success": True, "data": {"exists": False}}


def test_reshare_confirms_same_share_and_rejects_a_different_one(alice, db):
    key, share = secp_key(), share_hex()
    register(alice, key, share)
    body = {"curve_type": "secp256k1", "public_key": key}
    r = alice.post("/keyshare/v1/reshare", {**body, "share": share.upper()})
    assert (r.status_code, r.content) == (200, b'{"success":true}')
    r = alice.post("/keyshare/v1/reshare", {**body, "share": share_hex()})
    assert r.status_code == 409  # the reference: 500 (docs/differences.md)
    assert r.json() == {
        "success": False,
        "code": "RESHARE_FAILED",
        "msg": "New share does not match existing share",
    }
    # the stored share is unchanged
    assert alice.post("/keyshare/v1", {"public_key": key}).json()["data"]["share"] == share


def test_reshare_checks_wallet_before_user(api):
    stranger = Wallet(api)
    r = stranger.post(
        "/keyshare/v1/reshare",
        {"curve_type": "secp256k1", "public_key": secp_key(), "share": share_hex()},
    )
    assert r.status_code == 404 and r.json()["code"] == "WALLET_NOT_FOUND"


def test_unauthenticated_caller_gets_401_before_validation(api):
    r = api.post("/keyshare/v1/register", json={"public_key": "bad"})
    assert r.status_code == 401
    assert r.json() == {
        "success": False,
        "code": "UNAUTHORIZED",
        "msg": "Authorization header with Bearer token required",
    }
