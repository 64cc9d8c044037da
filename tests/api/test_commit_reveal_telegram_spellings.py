"""A co-node operator who saw a user's Telegram login re-spells it (key
order, whitespace, escapes, an empty extra key, numbers, hex case): the
text hash differs, the login still verifies. Once the user revealed it
here, no spelling of it is served to anybody else, bare or through a
session of another key, in both COMMIT_REVEAL modes; a re-spelling that
gets here first is served (a race defence), and the user's reveal that
follows is refused and logged as a possible replay."""

from __future__ import annotations

import threading
import time
import uuid

import pytest
import requests
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from services.api.auth import telegram
from services.api.auth.telegram import TelegramVerifier
from shared.store import cr_sessions
from tests.support.commit_reveal import (
    CrSession,
    expire_and_clean_up,
    raw_public,
    start_cr_node,
    token_hash,
    v1_user,
)
from tests.support.fakes.telegram import login_payload, respellings, token_text
from tests.support.ops import OPS_HEADERS

V1, V2 = "/keyshare/v1", "/keyshare/v2"
REQUIRED = (400, "INVALID_REQUEST", "cr_session_id and cr_signature are required")
BOUND = (
    400,
    "INVALID_REQUEST",
    "Telegram login already revealed in another session at this node (possible replay)",
)
SPELLINGS = list(respellings(login_payload()))


@pytest.fixture(scope="module", params=["optional", "required"])
def node(request, start_api):
    return start_cr_node(start_api, request.param)


@pytest.fixture()
def user(node):
    """A user with a secp256k1 wallet (v1 register: not protected) and the
    one Telegram login (``payload``) that its client commits and reveals."""
    wallet = v1_user(node)
    # a second earlier than Wallet.headers' logins: a login of its own
    wallet.payload = login_payload(wallet.user_id, auth_date=int(time.time()) - 1)
    return wallet


def headers(token: str) -> dict[str, str]:
    return {"Authorization": "Bearer " + token}


def error(r) -> tuple[int, str, str]:
    body = r.json()
    assert "data" not in body
    return r.status_code, body["code"], body["msg"]


def get_body(user) -> dict:
    return {"wallets": {"secp256k1": user.secp}}


def user_reveals(node, user) -> CrSession:
    """The user's client: commit, then its sign-in reveal, served."""
    s = CrSession(node, user, "sign_in", node.pubkey, headers=headers(token_text(user.payload)))
    assert s.commit().status_code == 200
    r = s.call(V2, "get_key_shares", get_body(user))
    assert r.json()["data"]["secp256k1"]["share"] == user.secp_share
    return s


def own_session(node, user, token: str, operation: str = "sign_in") -> CrSession:
    """A committed session of its own ephemeral key for ``token``: a co-node
    operator's for a spelling of the user's login (a new hash: accepted), or
    the user's for a new login."""
    s = CrSession(node, user, operation, node.pubkey, headers=headers(token))
    assert s.commit().status_code == 200
    return s


def test_every_spelling_verifies_as_the_same_login_with_one_credential(config):
    payload = login_payload("4242")
    original = token_text(payload)
    verifier = TelegramVerifier(config)
    texts = respellings(payload)
    assert len({original, *texts.values()}) == len(texts) + 1
    assert len({token_hash("telegram", t) for t in (original, *texts.values())}) == len(texts) + 1
    for text in texts.values():
        assert str(verifier.verify(text)["id"]) == "4242"
        assert telegram.credential(text) == telegram.credential(original)
    other_login = token_text(login_payload("4242", auth_date=int(payload["auth_date"]) - 1))
    assert telegram.credential(other_login) != telegram.credential(original)
    assert telegram.credential("not json") is None
    assert telegram.credential('{"hash":"abcd"}') is None


@pytest.mark.parametrize("spelling", SPELLINGS)
def test_bare_respelled_login_after_the_users_reveal_is_refused(node, user, spelling):
    user_reveals(node, user)
    bare = {"Authorization": "Bearer " + respellings(user.payload)[spelling]}
    body = {"auth_type": "telegram", **get_body(user)}
    assert error(node.post(V2, json=body, headers=bare)) == REQUIRED
    v1_get = {"auth_type": "telegram", "public_key": user.secp}
    assert error(node.post(V1, json=v1_get, headers=bare)) == REQUIRED
    reshare = {**v1_get, "curve_type": "secp256k1", "share": user.secp_share}
    assert error(node.post(f"{V1}/reshare", json=reshare, headers=bare)) == REQUIRED
    v2_reshare = {
        "auth_type": "telegram",
        "wallets": {"secp256k1": {"public_key": user.secp, "share": user.secp_share}},
    }
    assert error(node.post(f"{V2}/reshare", json=v2_reshare, headers=bare)) == REQUIRED


@pytest.mark.parametrize("spelling", SPELLINGS)
def test_rogue_session_with_a_respelled_login_after_the_users_reveal_is_refused(
    node, user, spelling
):
    user_reveals(node, user)
    r = own_session(node, user, respellings(user.payload)[spelling]).call(
        V2, "get_key_shares", get_body(user)
    )
    assert error(r) == BOUND


def audit_record(db, session_id: str) -> tuple[str, dict] | None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:  # reads are recorded in batches
        with db.cursor() as cur:
            cur.execute(
                "SELECT outcome, detail FROM ksn_audit WHERE event = 'keyshare.v2.get'"
                " AND detail->'commit_reveal'->>'session' = %s",
                (session_id,),
            )
            row = cur.fetchone()
        if row is not None:
            return row
        time.sleep(0.1)
    return None


def test_rogue_first_is_served_then_the_users_reveal_is_refused_and_logged(node, user, db, caplog):
    s = CrSession(node, user, "sign_in", node.pubkey, headers=headers(token_text(user.payload)))
    assert s.commit().status_code == 200
    # The race this defence cannot win: the re-spelled login arrives first.
    first = own_session(node, user, respellings(user.payload)["reordered"])
    r = first.call(V2, "get_key_shares", get_body(user))
    assert r.json()["data"]["secp256k1"]["share"] == user.secp_share
    with caplog.at_level("WARNING"):
        assert error(s.call(V2, "get_key_shares", get_body(user))) == BOUND
    logged = [r for r in caplog.records if getattr(r, "event", "") == "cr.credential_replay"]
    assert len(logged) == 1
    assert logged[0].levelname == "WARNING"
    assert (logged[0].session, logged[0].bound_session) == (s.session_id, first.session_id)
    assert "possible replay" in logged[0].getMessage()
    assert user.payload["hash"] not in caplog.text
    outcome, detail = audit_record(db, s.session_id) or ("missing", {})
    assert outcome == "INVALID_REQUEST"
    assert detail["commit_reveal"]["refused"] == "credential_bound"
    metrics = node.get("/metrics", headers=OPS_HEADERS).text
    assert 'ksnode_commit_reveal_total{kind="reveal",outcome="INVALID_REQUEST"}' in metrics


def test_concurrent_sessions_of_one_login_one_winner(node, user):
    texts = [token_text(user.payload), *respellings(user.payload).values()]
    sessions = [own_session(node, user, text) for text in texts]
    barrier = threading.Barrier(len(sessions))
    results: list = [None] * len(sessions)

    def reveal(i: int) -> None:
        s = sessions[i]
        body = {
            "auth_type": "telegram",
            "cr_session_id": s.session_id,
            "cr_signature": s.signature("get_key_shares"),
            **get_body(user),
        }
        barrier.wait()
        results[i] = requests.post(node.url + V2, json=body, headers=s.headers, timeout=30)

    threads = [threading.Thread(target=reveal, args=(i,)) for i in range(len(sessions))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    served = [r for r in results if r.status_code == 200]
    assert len(served) == 1
    assert served[0].json()["data"]["secp256k1"]["share"] == user.secp_share
    assert all(error(r) == BOUND for r in results if r.status_code != 200)


def test_binding_one_of_two_transactions_wins(db):
    """The store's binding, two transactions at once: the second waits for the
    first and then fails; had the first rolled back, it binds."""
    credential = telegram.credential(token_text(login_payload("777")))
    assert credential is not None
    keys = [raw_public(Ed25519PrivateKey.generate()) for _ in range(3)]
    ids = [str(uuid.uuid4()) for _ in range(3)]

    def second(key: bytes, session_id: str, outcome: list) -> None:
        try:
            with db.transaction() as cur:
                cr_sessions.bind_credential(cur, credential, key, session_id)
            outcome.append("bound")
        except cr_sessions.CredentialBound as exc:
            outcome.append(exc.session_id)

    for first_commits, expected in ((False, "bound"), (True, ids[1])):
        with db.transaction() as cur:
            cur.execute("DELETE FROM ksn_cr_credentials WHERE credential = %s", (credential,))
        outcome: list = []
        try:
            with db.transaction() as cur:
                cr_sessions.bind_credential(cur, credential, keys[1], ids[1])
                waiting = threading.Thread(target=second, args=(keys[2], ids[2], outcome))
                waiting.start()
                waiting.join(0.5)
                assert waiting.is_alive() and not outcome  # blocked on the key
                if not first_commits:
                    raise RuntimeError("roll back")
        except RuntimeError:
            pass
        waiting.join(10)
        assert outcome == [expected]


def test_honest_sessions_of_the_user_are_served(node, user):
    first = user_reveals(node, user)
    # the same login, the same key: a second operation (docs/operator.md)
    again = CrSession(node, user, "sign_in", node.pubkey, headers=first.headers, key=first.key)
    assert again.commit().status_code == 200
    r = again.call(V2, "get_key_shares", get_body(user))
    assert r.json()["data"]["secp256k1"]["share"] == user.secp_share
    # a new Telegram login (a later auth_date), a new key: a session of its own
    new_login = token_text(login_payload(user.user_id, auth_date=int(time.time())))
    assert new_login != first.token
    later = own_session(node, user, new_login)
    r = later.call(V2, "get_key_shares", get_body(user))
    assert r.json()["data"]["secp256k1"]["share"] == user.secp_share
    # two APIs of one session (sign_in_reshare): the binding is the session's.
    # Another login, a second before the first one: never the same text as
    # the two above, however slow the machine (a clock-based auth_date could
    # meet the first login's and find its hash committed: 409).
    another = token_text(login_payload(user.user_id, auth_date=int(user.payload["auth_date"]) - 1))
    s = own_session(node, user, another, "sign_in_reshare")
    assert s.call(V2, "get_key_shares", get_body(user)).status_code == 200
    wallets = {"secp256k1": {"public_key": user.secp, "share": user.secp_share}}
    assert s.call(f"{V2}/reshare", "reshare", {"wallets": wallets}).status_code == 200


def test_bare_login_never_revealed_is_served_as_before(node, user):
    """optional: a login never revealed here is served bare, in any spelling;
    required: bare v2 calls are refused whatever the spelling."""
    for text in respellings(user.payload).values():
        r = node.post(V2, json={"auth_type": "telegram", **get_body(user)}, headers=headers(text))
        if node.mode == "required":
            assert error(r) == REQUIRED
        else:
            assert r.json()["data"]["secp256k1"]["share"] == user.secp_share


def test_binding_outlives_the_session_and_expires_with_the_login(node, user, db):
    s = user_reveals(node, user)
    bare = headers(respellings(user.payload)["numbers"])
    v1_get = {"auth_type": "telegram", "public_key": user.secp}
    expire_and_clean_up(db, s.session_id)
    assert error(node.post(V1, json=v1_get, headers=bare)) == REQUIRED
    # once the login can no longer be accepted, the binding goes
    credential = telegram.credential(s.token)
    with db.cursor() as cur:
        cur.execute(
            "UPDATE ksn_cr_credentials SET bound_until = now() - interval '1 s'"
            " WHERE credential = %s",
            (credential,),
        )
    with db.transaction() as cur:
        _, _, unbound, _ = cr_sessions.housekeep(cur)
    assert unbound >= 1
    with db.cursor() as cur:
        cur.execute("SELECT 1 FROM ksn_cr_credentials WHERE credential = %s", (credential,))
        assert cur.fetchone() is None
    # (in a test the login is still fresh: a spelling not committed is served again)
    assert node.post(V1, json=v1_get, headers=bare).json()["data"]["share"] == user.secp_share
