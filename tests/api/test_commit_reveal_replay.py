"""What a co-node operator holding a user's token gets (spec commit-reveal
§1, §11 W2/W4, §12), in both COMMIT_REVEAL modes; hash reservation across
housekeeping; audit records and /metrics counters."""

from __future__ import annotations

import json
import time

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from shared.store import cr_sessions
from tests.support.commit_reveal import (
    CrSession,
    expire_and_clean_up,
    raw_public,
    start_cr_node,
    v1_user,
)
from tests.support.keyshare_helpers import Wallet, ed_key, secp_key, share_hex
from tests.support.ops import OPS_HEADERS

V2 = "/keyshare/v2"
REQUIRED = (400, "INVALID_REQUEST", "cr_session_id and cr_signature are required")


@pytest.fixture(scope="module", params=["optional", "required"])
def node(request, start_api):
    return start_cr_node(start_api, request.param)


@pytest.fixture()
def user(node):
    """A user with a secp256k1 wallet (v1)."""
    return v1_user(node)


def error(r) -> tuple[int, str, str]:
    body = r.json()
    assert "data" not in body
    return r.status_code, body["code"], body["msg"]


def test_bare_v2_call_by_mode(node, user):
    body = {"wallets": {"secp256k1": user.secp}}
    r = user.post(V2, body)
    if node.mode == "optional":
        assert r.json()["data"]["secp256k1"]["share"] == user.secp_share
    else:
        assert error(r) == REQUIRED
        # before the bearer check, as the reference
        assert error(node.post(V2, json=body)) == REQUIRED
    # /check and v1 are not protected
    assert node.post(f"{V2}/check", json={"wallets": {"secp256k1": user.secp}}).status_code == 200
    assert user.post("/keyshare/v1", {"public_key": user.secp}).status_code == 200


def test_co_node_operator_with_the_token_gets_nothing(node, user):
    s = CrSession(node, user, "sign_in_reshare", node.pubkey)
    assert s.commit().status_code == 200
    # The user reveals at a rogue node, which now holds the token and the
    # session id, but not the ephemeral key.
    rogue_key = Ed25519PrivateKey.generate()
    body = {"wallets": {"secp256k1": user.secp}}
    forged = s.signature("get_key_shares", rogue_key)
    r = s.call(V2, "get_key_shares", body, cr_signature=forged)
    assert error(r) == (400, "INVALID_SIGNATURE", "Invalid signature")
    # It cannot open its own session for the token: the hash is taken.
    rogue = CrSession(node, user, "sign_in", node.pubkey, headers=s.headers, key=rogue_key)
    assert error(rogue.commit())[:2] == (409, "SESSION_ALREADY_EXISTS")
    # A bare replay: refused on v2 and v1 alike, in both modes, no share.
    assert error(s.bare(V2, body)) == REQUIRED
    assert error(s.bare("/keyshare/v1", {"public_key": user.secp})) == REQUIRED
    reshare = {"curve_type": "secp256k1", "public_key": user.secp, "share": user.secp_share}
    assert error(s.bare("/keyshare/v1/reshare", reshare)) == REQUIRED
    # The user, with the key, is served.
    r = s.call(V2, "get_key_shares", body)
    assert r.json()["data"]["secp256k1"]["share"] == user.secp_share


def test_co_node_operator_cannot_front_run_a_sign_up_on_v1(node, db):
    """The user commits a sign-up here, then reveals at a rogue node first:
    the rogue replays the token bare on v1 register to plant its own share
    (the user's sign-up would then fail here, or keep the wrong share).
    Refused, nothing written; the user's own reveal then registers."""
    wallet = Wallet(node)
    keys = {"secp256k1": secp_key(), "ed25519": ed_key()}
    shares = {"secp256k1": share_hex(), "ed25519": share_hex()}
    s = CrSession(node, wallet, "sign_up", node.pubkey)
    assert s.commit().status_code == 200
    planted = {"curve_type": "secp256k1", "public_key": keys["secp256k1"], "share": share_hex()}
    assert error(s.bare("/keyshare/v1/register", planted)) == REQUIRED
    # refused the same when the route would refuse it anyway (checked first)
    bad_key = {**planted, "public_key": "02" + "00" * 10}
    assert error(s.bare("/keyshare/v1/register", bad_key)) == REQUIRED
    # and on the general path (the public key taken by another user)
    other = v1_user(node)
    taken = {**planted, "public_key": other.secp}
    assert error(s.bare("/keyshare/v1/register", taken)) == REQUIRED
    with db.cursor() as cur:
        cur.execute(
            'SELECT count(*) FROM "2_users" WHERE auth_type = %s AND user_auth_id = %s',
            ("telegram", wallet.user_auth_id),
        )
        assert cur.fetchone()[0] == 0
    body = {"wallets": {c: {"public_key": keys[c], "share": shares[c]} for c in keys}}
    assert s.call(f"{V2}/register", "register", body).status_code == 200
    r = CrSession(node, wallet, "sign_in", node.pubkey, headers=s.headers, key=s.key)
    assert r.commit().status_code == 200
    got = r.call(V2, "get_key_shares", {"wallets": keys}).json()["data"]
    assert {c: v["share"] for c, v in got.items()} == shares


def test_hash_stays_reserved_across_housekeeping(node, user, db):
    s = CrSession(node, user, "sign_in", node.pubkey)
    assert s.commit().status_code == 200
    expire_and_clean_up(db, s.session_id)
    with db.cursor() as cur:
        assert cr_sessions.get(cur, s.session_id) is None
    # the token is still refused bare, and no other key can commit it
    assert error(s.bare("/keyshare/v1", {"public_key": user.secp})) == REQUIRED
    rogue = CrSession(node, user, "sign_in", node.pubkey, headers=s.headers)
    assert error(rogue.commit())[:2] == (409, "SESSION_ALREADY_EXISTS")
    # the key that committed it may open a new session for it
    again = CrSession(node, user, "sign_in", node.pubkey, headers=s.headers, key=s.key)
    assert again.commit().status_code == 200
    r = again.call(V2, "get_key_shares", {"wallets": {"secp256k1": user.secp}})
    assert r.status_code == 200
    # once the token can no longer be accepted, the reservation goes
    with db.cursor() as cur:
        cur.execute(
            "UPDATE ksn_cr_reserved_hashes SET reserved_until = now() - interval '1 s'"
            " WHERE id_token_hash = %s",
            (s.token_hash,),
        )
        cur.execute(
            "UPDATE \"2_commit_reveal_sessions\" SET expires_at = now() - interval '2 hours'"
            " WHERE session_id = %s",
            (again.session_id,),
        )
    with db.transaction() as cur:
        cr_sessions.housekeep(cur)
    with db.cursor() as cur:
        assert not cr_sessions.hash_committed(cur, s.token_hash)
    assert rogue.commit().status_code == 200


def test_audit_and_metrics_never_carry_the_token_or_signature(node, user, db):
    s = CrSession(node, user, "sign_in", node.pubkey)
    assert s.commit().status_code == 200
    sig = s.signature("get_key_shares")
    r = s.call(V2, "get_key_shares", {"wallets": {"secp256k1": user.secp}})
    assert r.status_code == 200
    deadline = time.monotonic() + 10
    rows: list = []
    while len(rows) < 2 and time.monotonic() < deadline:  # batched records
        time.sleep(0.2)
        with db.cursor() as cur:
            cur.execute(
                "SELECT event, outcome, detail FROM ksn_audit"
                " WHERE detail->'commit_reveal'->>'session' = %s ORDER BY seq",
                (s.session_id,),
            )
            rows = cur.fetchall()
    assert [(e, o) for e, o, _ in rows] == [("keyshare.v2.commit", "ok"), ("keyshare.v2.get", "ok")]
    assert rows[0][2]["commit_reveal"] == {
        "kind": "commit",
        "session": s.session_id,
        "operation": "sign_in",
    }
    assert rows[1][2]["commit_reveal"] == {
        "kind": "reveal",
        "api": "get_key_shares",
        "session": s.session_id,
        "operation": "sign_in",
    }
    text = json.dumps(rows)
    assert s.token_hash not in text and sig not in text and raw_public(s.key).hex() not in text
    metrics = node.get("/metrics", headers=OPS_HEADERS).text
    assert 'ksnode_commit_reveal_total{kind="commit",outcome="ok"}' in metrics
    assert 'ksnode_commit_reveal_total{kind="reveal",outcome="ok"}' in metrics
    assert sig not in metrics and s.token not in metrics
