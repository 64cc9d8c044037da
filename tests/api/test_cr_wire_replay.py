"""A whole commit-reveal exchange captured on the wire (spec commit-reveal
§4.4: the reveal signature covers the node key, session id, token,
operation and API, and no nonce or time), replayed verbatim later: the
session id is spent at this node, as in the reference (whose rows are never
deleted), also after housekeeping removed the session or its key reopened
another session for the token."""

from __future__ import annotations

import pytest

from tests.support.commit_reveal import CrSession, expire_and_clean_up, start_cr_node, v1_user

V2 = "/keyshare/v2"


@pytest.fixture(scope="module")
def node(start_api):
    return start_cr_node(start_api, "optional")


def captured_exchange(node, user):
    """The user's commit and get_key_shares reveal, as someone who saw the
    requests (not the answers) would hold them."""
    s = CrSession(node, user, "sign_in", node.pubkey)
    commit = s.commit_body()
    assert node.post("/keyshare/v2/commit", json=commit).status_code == 200
    reveal = {
        "auth_type": "telegram",
        "cr_session_id": s.session_id,
        "cr_signature": s.signature("get_key_shares"),
        "wallets": {"secp256k1": user.secp},
    }
    r = node.post(V2, json=reveal, headers=s.headers)
    assert r.json()["data"]["secp256k1"]["share"] == user.secp_share
    return s, commit, reveal


def replayed(node, s, commit, reveal):
    """Replay both requests verbatim: (commit status, reveal answer)."""
    c = node.post("/keyshare/v2/commit", json=commit)
    r = node.post(V2, json=reveal, headers=s.headers)
    return c, r


def test_replay_after_housekeeping_gets_no_share(node, db):
    user = v1_user(node)
    s, commit, reveal = captured_exchange(node, user)
    expire_and_clean_up(db, s.session_id)
    c, r = replayed(node, s, commit, reveal)
    assert c.status_code == 409, c.text
    assert c.json()["code"] == "SESSION_ALREADY_EXISTS"
    assert r.status_code == 404 and "data" not in r.json()


def test_replay_after_the_key_reopened_a_session_gets_no_share(node, db):
    user = v1_user(node)
    s, commit, reveal = captured_exchange(node, user)
    # the user's key opens a second session for the same login (allowed)
    again = CrSession(node, user, "sign_in", node.pubkey, headers=s.headers, key=s.key)
    assert again.commit().status_code == 200
    assert (
        again.call(V2, "get_key_shares", {"wallets": {"secp256k1": user.secp}}).status_code == 200
    )
    expire_and_clean_up(db, again.session_id)
    c, r = replayed(node, s, commit, reveal)
    assert c.status_code == 409, c.text
    assert "data" not in r.json()
    # the user's key may still open fresh sessions for the login
    third = CrSession(node, user, "sign_in", node.pubkey, headers=s.headers, key=s.key)
    assert third.commit().status_code == 200
    r = third.call(V2, "get_key_shares", {"wallets": {"secp256k1": user.secp}})
    assert r.json()["data"]["secp256k1"]["share"] == user.secp_share


def test_reopened_sessions_leave_no_call_rows_behind(node, db):
    """The calls of a session its key replaced go with it: nothing else
    would ever remove them (housekeeping removes the calls of the sessions
    it removes)."""
    user = v1_user(node)
    s, _, _ = captured_exchange(node, user)
    again = CrSession(node, user, "sign_in", node.pubkey, headers=s.headers, key=s.key)
    assert again.commit().status_code == 200
    expire_and_clean_up(db, again.session_id)
    with db.cursor() as cur:
        cur.execute(
            'SELECT count(*) FROM "2_commit_reveal_api_calls" WHERE session_id = ANY(%s::uuid[])',
            ([s.session_id, again.session_id],),
        )
        assert cur.fetchone()[0] == 0
