"""/keyshare/v2: get, check, register, register/ed25519, reshare,
reshare/register (spec §5.5–§5.10)."""

import pytest

from shared.store.tables import KEY_SHARES, WALLETS
from tests.support.keyshare_helpers import Wallet, ed_key, register_v2_user, secp_key, share_hex


@pytest.fixture()
def user(api):
    wallet, r = register_v2_user(api)
    assert (r.status_code, r.content) == (200, b'{"success":true}')
    return wallet


def test_get_both_curves_and_single_curve(user):
    for path in ("/keyshare/v2", "/keyshare/v2/"):
        r = user.post(path, {"wallets": dict(user.keys)})
        data = r.json()["data"]
        assert list(data) == ["secp256k1", "ed25519"]
        assert data["ed25519"]["share"] == user.shares["ed25519"]
        assert data["secp256k1"]["share"] == user.shares["secp256k1"]
    r = user.post("/keyshare/v2/", {"wallets": {"ed25519": user.keys["ed25519"]}})
    assert list(r.json()["data"]) == ["ed25519"]
    r = user.post(
        "/keyshare/v2/", {"wallets": {"secp256k1": user.keys["secp256k1"], "ed25519": ""}}
    )
    assert list(r.json()["data"]) == ["secp256k1"]
    assert user.post("/keyshare/v2/", {"wallets": {}}).content == b'{"success":true,"data":{}}'


def test_get_errors(user, api):
    r = user.post("/keyshare/v2/", {"wallets": {"secp256k1": user.keys["ed25519"]}})
    assert r.status_code == 400
    assert r.json()["msg"] == (
        "Public key is not valid for secp256k1: Invalid length. Expected: 66 characters, Actual: 64"
    )
    r = Wallet(api).post("/keyshare/v2/", {"wallets": {"ed25519": ed_key()}})
    assert (r.status_code, r.json()["code"], r.json()["msg"]) == (
        404,
        "USER_NOT_FOUND",
        "User not found",
    )
    r = user.post("/keyshare/v2/", {"wallets": {"ed25519": ed_key()}})
    assert r.json() == {
        "success": False,
        "code": "WALLET_NOT_FOUND",
        "msg": "Wallet not found for curve_type: ed25519",
    }
    # both fail: the secp256k1 error is reported
    r = user.post("/keyshare/v2/", {"wallets": {"secp256k1": secp_key(), "ed25519": ed_key()}})
    assert r.json()["msg"] == "Wallet not found for curve_type: secp256k1"
    other = Wallet(api)
    other.register_v2(secp_key(), share_hex(), ed_key(), share_hex())
    r = other.post("/keyshare/v2/", {"wallets": {"ed25519": user.keys["ed25519"]}})
    assert r.status_code == 401


@pytest.mark.parametrize("body", [{}, {"wallets": None}, {"wallets": "x"}, {"wallets": []}])
def test_missing_wallets_is_400_not_a_crash(user, api, body):
    assert user.post("/keyshare/v2/", body).status_code == 400
    r = api.post("/keyshare/v2/check", json=body)
    assert r.status_code == 400
    assert r.json() == {"success": False, "code": "INVALID_REQUEST", "msg": "wallets is required"}


def test_check(user, api):
    body = {
        "user_auth_id": user.user_auth_id,
        "auth_type": "telegram",
        "wallets": {"secp256k1": user.keys["secp256k1"], "ed25519": ed_key()},
    }
    r = api.post("/keyshare/v2/check", json=body)
    assert (
        r.content
        == b'{"success":true,"data":{"secp256k1":{"exists":true},"ed25519":{"exists":false}}}'
    )
    # no default auth_type on v2 check: no user found
    r = api.post("/keyshare/v2/check", json={k: v for k, v in body.items() if k != "auth_type"})
    assert r.json()["data"] == {"secp256k1": {"exists": False}, "ed25519": {"exists": False}}
    r = api.post("/keyshare/v2/check", json={**body, "user_auth_id": "telegram_0"})
    assert r.json()["data"] == {"secp256k1": {"exists": False}, "ed25519": {"exists": False}}
    other = Wallet(api)
    other.register_v2(secp_key(), share_hex(), ed_key(), share_hex())
    r = api.post("/keyshare/v2/check", json={**body, "user_auth_id": other.user_auth_id})
    assert r.status_code == 400 and r.json()["code"] == "PUBLIC_KEY_INVALID"


def test_register_requires_both_curves_and_repeats_are_409(user, api):
    r = user.post(
        "/keyshare/v2/register",
        {"wallets": {"secp256k1": {"public_key": secp_key(), "share": share_hex()}}},
    )
    assert r.json() == {
        "success": False,
        "code": "INVALID_REQUEST",
        "msg": "Both secp256k1 and ed25519 wallets are required",
    }
    r = user.register_v2(
        user.keys["secp256k1"],
        user.shares["secp256k1"],
        user.keys["ed25519"],
        user.shares["ed25519"],
    )
    assert r.status_code == 409
    assert r.json() == {
        "success": False,
        "code": "DUPLICATE_PUBLIC_KEY",
        "msg": "Duplicate public key for curve_type: secp256k1",
    }


def test_register_is_atomic_when_the_second_curve_is_taken(user, api, db):
    fresh_secp = secp_key()
    r = Wallet(api).register_v2(fresh_secp, share_hex(), user.keys["ed25519"], share_hex())
    assert r.status_code == 409 and r.json()["msg"].endswith("ed25519")
    with db.cursor() as cur:
        cur.execute(
            f"SELECT count(*) FROM {WALLETS} WHERE public_key = %s", (bytes.fromhex(fresh_secp),)
        )
        assert cur.fetchone()[0] == 0


def test_register_ed25519_for_existing_user(api):
    wallet = Wallet(api)
    body = {"public_key": ed_key(), "share": share_hex()}
    r = wallet.post("/keyshare/v2/register/ed25519", body)
    assert (r.status_code, r.json()["code"]) == (404, "USER_NOT_FOUND")
    wallet.post(
        "/keyshare/v1/register",
        {"curve_type": "secp256k1", "public_key": secp_key(), "share": share_hex()},
    )
    assert wallet.post("/keyshare/v2/register/ed25519", body).content == b'{"success":true}'
    r = wallet.post("/keyshare/v2/register/ed25519", body)
    assert r.status_code == 409
    assert r.json()["msg"] == "Duplicate public key for curve_type: ed25519"
    only_ed = Wallet(api)
    only_ed.post(
        "/keyshare/v1/register",
        {"curve_type": "ed25519", "public_key": ed_key(), "share": share_hex()},
    )
    r = only_ed.post(
        "/keyshare/v2/register/ed25519", {"public_key": ed_key(), "share": share_hex()}
    )
    assert r.json() == {
        "success": False,
        "code": "WALLET_NOT_FOUND",
        "msg": "secp256k1 wallet not found (not an existing user)",
    }


def test_reshare_confirms_and_mismatch_rolls_back_every_stamp(user, db):
    def stamps():
        with db.cursor() as cur:
            cur.execute(
                f"SELECT w.curve_type, s.reshared_at FROM {KEY_SHARES} s JOIN {WALLETS} w"
                " USING (wallet_id) WHERE w.public_key = ANY(%s)",
                ([bytes.fromhex(k) for k in user.keys.values()],),
            )
            return dict(cur.fetchall())

    before = stamps()
    good = {c: {"public_key": user.keys[c], "share": user.shares[c]} for c in user.keys}
    bad = {**good, "ed25519": {"public_key": user.keys["ed25519"], "share": share_hex()}}
    r = user.post("/keyshare/v2/reshare", {"wallets": bad})
    assert r.status_code == 409  # the reference: 500 (docs/differences.md)
    assert r.json() == {"success": False, "code": "RESHARE_FAILED", "msg": "Share mismatch"}
    assert stamps() == before  # the secp256k1 stamp was rolled back too
    assert user.post("/keyshare/v2/reshare", {"wallets": good}).content == b'{"success":true}'
    after = stamps()
    assert all(after[c] > before[c] for c in before)
    assert user.post("/keyshare/v2/reshare", {"wallets": {}}).content == b'{"success":true}'


def test_reshare_register_creates_user_and_wallets(api, db):
    wallet = Wallet(api)
    key, share = secp_key(), share_hex()
    r = wallet.post(
        "/keyshare/v2/reshare/register",
        {"wallets": {"secp256k1": {"public_key": key, "share": share}}},
    )
    assert r.content == b'{"success":true}'
    got = wallet.post("/keyshare/v2/", {"wallets": {"secp256k1": key}})
    assert got.json()["data"]["secp256k1"]["share"] == share
    r = wallet.post(
        "/keyshare/v2/reshare/register",
        {"wallets": {"secp256k1": {"public_key": key, "share": share}}},
    )
    assert r.status_code == 409
    empty = Wallet(api)
    assert empty.post("/keyshare/v2/reshare/register", {"wallets": {}}).status_code == 200
    with db.cursor() as cur:
        cur.execute('SELECT count(*) FROM "2_users" WHERE user_auth_id = %s', (empty.user_auth_id,))
        assert cur.fetchone()[0] == 1
