"""The hot paths made single statements (issue 28) answer as before.

* A bare share read checks for a committed token inside its share lookup;
  a committed token still gets INVALID_REQUEST whatever else is wrong with
  the request (the check used to run first), and the audit record of the
  refusal names no identity.
* A v1 registration is one statement; when it cannot register (a taken
  key) nothing of it stays, not even a new user row.
"""

from __future__ import annotations

import time

import pytest

from tests.support.commit_reveal import CrSession, v1_user
from tests.support.keyshare_helpers import Wallet, ed_key, secp_key, share_hex

REQUIRED = (400, "INVALID_REQUEST", "cr_session_id and cr_signature are required")


@pytest.fixture(scope="module")
def node(start_api):
    server = start_api(commit_reveal="optional")
    server.pubkey = server.get("/status").json()["ks_node_public_key"]
    return server


def error(r) -> tuple[int, str, str]:
    body = r.json()
    assert "data" not in body
    return r.status_code, body["code"], body["msg"]


def test_committed_token_refused_before_any_other_answer(node):
    user = v1_user(node)
    s = CrSession(node, user, "sign_in", node.pubkey)
    assert s.commit().status_code == 200
    cases = [
        ("/keyshare/v1", {"public_key": user.secp}),  # would be served
        ("/keyshare/v1", {"public_key": "zz"}),  # malformed key
        ("/keyshare/v1", {"public_key": secp_key()}),  # unknown wallet
        ("/keyshare/v2", {"wallets": {"secp256k1": user.secp}}),
        ("/keyshare/v2", {"wallets": {"secp256k1": "zz"}}),
        ("/keyshare/v2", {"wallets": {}}),  # nothing to look up
        ("/keyshare/v2", {"wallets": {"ed25519": ed_key()}}),
    ]
    for path, body in cases:
        assert error(s.bare(path, body)) == REQUIRED, (path, body)
    # a token that fails authentication, once committed, is refused as committed
    forged = CrSession(node, user, "sign_in", node.pubkey, headers={"Authorization": "Bearer x"})
    assert forged.commit().status_code == 200
    assert error(forged.bare("/keyshare/v1", {"public_key": user.secp})) == REQUIRED
    assert error(forged.bare("/keyshare/v2", {"wallets": {"secp256k1": user.secp}})) == REQUIRED


def test_uncommitted_token_gets_the_routes_own_answers(node):
    user = v1_user(node)
    assert user.post("/keyshare/v1", {"public_key": user.secp}).json()["data"]["share"] == (
        user.secp_share
    )
    assert error(user.post("/keyshare/v1", {"public_key": "zz"}))[2].startswith(
        "Public key is not valid:"
    )
    other = secp_key()
    assert error(user.post("/keyshare/v1", {"public_key": other})) == (
        404,
        "WALLET_NOT_FOUND",
        f"Wallet not found: {other}",
    )
    r = user.post("/keyshare/v2", {"wallets": {"secp256k1": user.secp}})
    assert r.json()["data"]["secp256k1"]["share"] == user.secp_share


def test_refusal_audit_record_names_no_identity(node, db):
    user = v1_user(node)
    s = CrSession(node, user, "sign_in", node.pubkey)
    assert s.commit().status_code == 200
    r = s.bare("/keyshare/v1", {"public_key": user.secp})
    assert error(r) == REQUIRED
    request_id = r.headers["X-Request-Id"]
    row = None
    deadline = time.monotonic() + 10
    while row is None and time.monotonic() < deadline:  # reads' records are batched
        with db.cursor() as cur:
            cur.execute(
                "SELECT outcome, user_ref, detail FROM ksn_audit WHERE request_id = %s",
                (request_id,),
            )
            row = cur.fetchone()
        time.sleep(0.1)
    assert row is not None
    outcome, user_ref, detail = row
    assert outcome == "INVALID_REQUEST"
    assert user_ref is None
    assert detail["commit_reveal"] == {"kind": "bare", "refused": "committed"}


def test_taken_key_leaves_no_new_user(node, db):
    owner = v1_user(node)
    newcomer = Wallet(node)
    r = newcomer.post(
        "/keyshare/v1/register",
        {"curve_type": "secp256k1", "public_key": owner.secp, "share": share_hex()},
    )
    assert error(r) == (409, "DUPLICATE_PUBLIC_KEY", f"Duplicate public key: {owner.secp}")
    with db.cursor() as cur:
        cur.execute(
            'SELECT count(*) FROM "2_users" WHERE auth_type = %s AND user_auth_id = %s',
            ("telegram", newcomer.user_auth_id),
        )
        assert cur.fetchone()[0] == 0
    # the owner's share is untouched
    assert owner.post("/keyshare/v1", {"public_key": owner.secp}).json()["data"]["share"] == (
        owner.secp_share
    )


def test_second_wallet_joins_the_existing_user(node, db):
    user = v1_user(node)
    second, second_share = secp_key(), share_hex()
    r = user.post(
        "/keyshare/v1/register",
        {"curve_type": "secp256k1", "public_key": second, "share": second_share},
    )
    assert r.status_code == 200
    with db.cursor() as cur:
        cur.execute(
            'SELECT count(DISTINCT w.user_id), count(*) FROM "2_wallets" w'
            ' JOIN "2_users" u ON u.user_id = w.user_id WHERE u.user_auth_id = %s',
            (user.user_auth_id,),
        )
        assert cur.fetchone() == (1, 2)
    assert user.post("/keyshare/v1", {"public_key": second}).json()["data"]["share"] == (
        second_share
    )
