"""Every provider end to end through the v1 and v2 routes against the fake
identity provider; the stored user_auth_id is byte-identical to spec §4.2."""

import pytest

from tests.fakes.idp import FakeIdentityProvider
from tests.keyshare_helpers import ed_key, secp_key, share_hex


@pytest.fixture(scope="module")
def idp():
    provider = FakeIdentityProvider()
    yield provider
    provider.close()


@pytest.fixture(scope="module")
def node(start_api, idp):
    return start_api(**idp.config_overrides())


def tokens(idp):
    idp.userinfo["x-token"] = (200, {"data": {"id": "4400", "username": "xu"}}, 0)
    idp.userinfo["discord-token"] = (200, {"id": "7700", "email": "d@example.com"}, 0)
    return {
        "google": (idp.token(idp.google_claims("109876543210987654321")), "google_109876543210987654321"),
        "auth0": (idp.token(idp.auth0_claims("Alice@Example.com")), "Alice@Example.com"),
        "x": ("x-token", "x_4400"),
        "discord": ("discord-token", "discord_7700"),
    }


@pytest.mark.parametrize("provider", ["google", "auth0", "x", "discord"])
def test_register_and_fetch_through_v1_and_v2(node, idp, db, provider):
    token, expected_id = tokens(idp)[provider]
    headers = {"Authorization": f"Bearer {token}"}
    secp, ed, s1, s2, v1key, v1share = secp_key(), ed_key(), share_hex(), share_hex(), secp_key(), share_hex()
    r = node.post("/keyshare/v2/register", headers=headers, json={"auth_type": provider, "wallets": {
        "secp256k1": {"public_key": secp, "share": s1}, "ed25519": {"public_key": ed, "share": s2}}})
    assert r.status_code == 200, r.text
    r = node.post("/keyshare/v1/register", headers=headers, json={
        "auth_type": provider, "curve_type": "secp256k1", "public_key": v1key, "share": v1share})
    assert r.status_code == 200, r.text
    r = node.post("/keyshare/v2/", headers=headers, json={"auth_type": provider,
                                                          "wallets": {"secp256k1": secp, "ed25519": ed}})
    assert r.json()["data"]["ed25519"]["share"] == s2
    r = node.post("/keyshare/v1/", headers=headers, json={"auth_type": provider, "public_key": v1key})
    assert r.json()["data"]["share"] == v1share
    with db.cursor() as cur:
        cur.execute('SELECT user_auth_id FROM "2_users" WHERE auth_type = %s', (provider,))
        assert [row[0] for row in cur.fetchall()] == [expected_id]
    check = node.post("/keyshare/v2/check", json={"auth_type": provider, "user_auth_id": expected_id,
                                                  "wallets": {"secp256k1": secp}})
    assert check.json()["data"] == {"secp256k1": {"exists": True}}


@pytest.mark.parametrize("provider,token", [("google", "garbage"), ("auth0", "garbage"),
                                            ("x", "unknown"), ("discord", "unknown")])
def test_bad_tokens_are_401_json(node, provider, token):
    r = node.post("/keyshare/v2/", headers={"Authorization": f"Bearer {token}"},
                  json={"auth_type": provider, "wallets": {}})
    assert r.status_code == 401
    assert r.json()["code"] == "UNAUTHORIZED" and r.json()["msg"]


def test_provider_down_is_401_not_500(start_api, idp):
    node = start_api(**{**idp.config_overrides(), "google_jwks_url": "http://127.0.0.1:9/certs"})
    r = node.post("/keyshare/v2/", headers={"Authorization": f"Bearer {idp.token(idp.google_claims())}"},
                  json={"auth_type": "google", "wallets": {}})
    assert r.status_code == 401
    assert r.json()["msg"].startswith("Token validation failed:")
