"""Commit-reveal over real HTTP with real Ed25519 signatures (spec
commit-reveal §3, §4, §5, §12): the commit, every reveal check with its
code, each operation end to end, one winner under concurrency."""

from __future__ import annotations

import hashlib
import threading
import uuid

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from services.api.web.commit_reveal import OPERATIONS
from tests.support.commit_reveal import CrSession, raw_public
from tests.support.keyshare_helpers import Wallet, ed_key, register_v2_user, secp_key, share_hex

V2 = "/keyshare/v2"


@pytest.fixture(scope="module")
def node_pubkey(api) -> str:
    return api.get("/status").json()["ks_node_public_key"]


@pytest.fixture()
def user(api):
    wallet, r = register_v2_user(api)
    assert r.status_code == 200
    return wallet


def session(api, wallet, operation, node_pubkey, **kw) -> CrSession:
    s = CrSession(api, wallet, operation, node_pubkey, **kw)
    r = s.commit()
    assert r.status_code == 200, r.text
    return s


def error(r) -> tuple[int, str, str]:
    body = r.json()
    assert body["success"] is False
    return r.status_code, body["code"], body["msg"]


def test_commit_answer_is_the_reference_wire(api, user, node_pubkey):
    s = CrSession(api, user, "sign_in", node_pubkey)
    r = s.commit()
    assert r.status_code == 200
    assert r.headers["Content-Type"].startswith("application/json")
    data = r.json()["data"]
    assert r.content.startswith(b'{"success":true,"data":{"node_pubkey":"')
    assert list(data) == ["node_pubkey", "node_signature"]
    assert data["node_pubkey"] == node_pubkey == node_pubkey.lower()
    digest = hashlib.sha256(node_pubkey.encode()).digest()
    Ed25519PublicKey.from_public_bytes(bytes.fromhex(node_pubkey)).verify(
        bytes.fromhex(data["node_signature"]), digest
    )
    # the alias path, trailing slash and case like every route
    other = CrSession(api, Wallet(api), "sign_up", node_pubkey)
    r2 = other.commit("/Commit-Reveal/v2/commit/")
    assert r2.status_code == 200
    assert r2.json()["data"]["node_signature"] == data["node_signature"]


@pytest.mark.parametrize(
    ("overrides", "msg"),
    [
        (
            {"client_ephemeral_pubkey": None},
            "Invalid client_ephemeral_pubkey: Input must be a string.",
        ),
        (
            {"client_ephemeral_pubkey": "ab" * 31},
            "Invalid client_ephemeral_pubkey: Invalid length. Expected: 64 characters, Actual: 62",
        ),
        (
            {"client_ephemeral_pubkey": "zz" * 32},
            "Invalid client_ephemeral_pubkey: Invalid hexadecimal string format.",
        ),
        (
            {"client_ephemeral_pubkey": ""},
            "Invalid client_ephemeral_pubkey: Invalid length or invalid bytesLength. Expected: > 0",
        ),
        ({"id_token_hash": 5}, "Invalid id_token_hash: Input must be a string."),
        ({"session_id": None}, "session_id is required"),
        ({"session_id": "not-a-uuid"}, "Invalid session_id: must be a UUID"),
        ({"session_id": 12}, "Invalid session_id: must be a UUID"),
        ({"operation_type": None}, "operation_type is required"),
        ({"operation_type": "reshare"}, None),
        ({"operation_type": "x" * 40}, None),
        ({"operation_type": 5}, None),
    ],
)
def test_commit_client_mistakes_are_400(api, node_pubkey, overrides, msg):
    s = CrSession(api, Wallet(api), "sign_in", node_pubkey)
    status, code, text = error(s.commit(**overrides))
    assert (status, code) == (400, "INVALID_REQUEST")
    assert text == (
        msg
        or "Invalid operation_type: must be one of sign_in, sign_up, "
        "sign_in_reshare, register_reshare, add_ed25519"
    )


def test_commit_non_json_body_checks_the_key_first(api):
    r = api.post("/keyshare/v2/commit", data="x", headers={"Content-Type": "text/plain"})
    assert error(r) == (
        400,
        "INVALID_REQUEST",
        "Invalid client_ephemeral_pubkey: Input must be a string.",
    )


def test_commit_duplicates_are_409(api, node_pubkey):
    s = session(api, Wallet(api), "sign_in", node_pubkey)
    fresh_key = raw_public(Ed25519PrivateKey.generate()).hex()
    dup = "Session with this session_id, client_ephemeral_pubkey, or id_token_hash already exists"
    for overrides in (
        {"client_ephemeral_pubkey": fresh_key, "id_token_hash": "11" * 32},  # same session_id
        {"session_id": str(uuid.uuid4()), "id_token_hash": "22" * 32},  # same key
        {"session_id": str(uuid.uuid4()), "client_ephemeral_pubkey": fresh_key},  # same hash
        # W8: the hash is hex; its upper-case spelling is the same hash
        {
            "session_id": str(uuid.uuid4()),
            "client_ephemeral_pubkey": fresh_key,
            "id_token_hash": s.token_hash.upper(),
        },
    ):
        assert error(s.commit(**overrides)) == (409, "SESSION_ALREADY_EXISTS", dup)


def test_reveal_checks_in_order(api, user, node_pubkey, db):
    s = session(api, user, "sign_in", node_pubkey)
    body = {"wallets": {"ed25519": user.keys["ed25519"]}}
    required = (400, "INVALID_REQUEST", "cr_session_id and cr_signature are required")
    # 1: both fields, truthy; checked before the bearer token
    assert error(s.call(V2, "get_key_shares", body, cr_signature="")) == required
    r = api.post(V2, json={**body, "cr_session_id": s.session_id})
    assert error(r) == required
    # 2 (ours, W7): not a UUID is a 400, not a 500
    r = s.call(V2, "get_key_shares", body, cr_session_id="nope")
    assert error(r) == (400, "INVALID_REQUEST", "Invalid cr_session_id: must be a UUID")
    # 3
    r = s.call(V2, "get_key_shares", body, cr_session_id=str(uuid.uuid4()))
    assert error(r) == (404, "SESSION_NOT_FOUND", "Session not found")
    # 6
    r = s.call(
        f"{V2}/register/ed25519", "register_ed25519", {"public_key": ed_key(), "share": share_hex()}
    )
    assert error(r) == (
        400,
        "INVALID_REQUEST",
        'API "register_ed25519" is not allowed for operation "sign_in"',
    )
    # 8
    r = s.call(V2, "get_key_shares", body, cr_signature="ab" * 63)
    assert error(r) == (
        400,
        "INVALID_SIGNATURE",
        "Invalid signature format: Invalid length. Expected: 128 characters, Actual: 126",
    )
    r = s.call(V2, "get_key_shares", body, cr_signature=7)
    assert error(r)[2] == "Invalid signature format: Input must be a string."
    # 10
    full = {**body, "auth_type": "telegram", "cr_session_id": s.session_id}
    r = api.post(V2, json={**full, "cr_signature": s.signature("get_key_shares")})
    assert error(r) == (401, "UNAUTHORIZED", "Authorization header with Bearer token required")
    # 11: another token
    r = api.post(
        V2,
        json={**full, "cr_signature": s.signature("get_key_shares")},
        headers=Wallet(api).headers,
    )
    assert error(r) == (
        400,
        "INVALID_REQUEST",
        "id_token_hash mismatch: token does not match committed session",
    )
    # 12: signed by another key, or for another API
    r = s.call(
        V2,
        "get_key_shares",
        body,
        cr_signature=s.signature("get_key_shares", Ed25519PrivateKey.generate()),
    )
    assert error(r) == (400, "INVALID_SIGNATURE", "Invalid signature")
    r = s.call(V2, "get_key_shares", body, cr_signature=s.signature("register"))
    assert error(r) == (400, "INVALID_SIGNATURE", "Invalid signature")
    # pass; upper-case signature hex accepted
    r = s.call(V2, "get_key_shares", body, cr_signature=s.signature("get_key_shares").upper())
    assert r.status_code == 200
    assert r.json()["data"]["ed25519"]["share"] == user.shares["ed25519"]
    # 4: the final API completed the session
    r = s.call(V2, "get_key_shares", body)
    assert error(r) == (400, "INVALID_REQUEST", "Session is not in COMMITTED state: COMPLETED")
    # 5: expired
    late = session(api, Wallet(api), "sign_in", node_pubkey)
    with db.cursor() as cur:
        cur.execute(
            "UPDATE \"2_commit_reveal_sessions\" SET expires_at = now() - interval '1 s'"
            " WHERE session_id = %s",
            (late.session_id,),
        )
    assert error(late.call(V2, "get_key_shares", body)) == (
        410,
        "SESSION_EXPIRED",
        "Session has expired",
    )


def test_unknown_operation_written_by_the_reference_is_refused_not_a_crash(
    api, user, node_pubkey, db
):
    s = CrSession(api, user, "reshare", node_pubkey)
    with db.cursor() as cur:
        cur.execute(
            'INSERT INTO "2_commit_reveal_sessions" (session_id, operation_type,'
            " client_ephemeral_pubkey, id_token_hash, expires_at)"
            " VALUES (%s, 'reshare', %s, %s, now() + interval '5 min')",
            (s.session_id, raw_public(s.key), s.token_hash.upper()),
        )
    r = s.call(V2, "get_key_shares", {"wallets": {}})
    assert error(r) == (
        400,
        "INVALID_REQUEST",
        'API "get_key_shares" is not allowed for operation "reshare"',
    )
    assert api.get("/status").status_code == 200


def test_sign_up_and_sign_in(api, node_pubkey):
    wallet = Wallet(api)
    keys = {"secp256k1": secp_key(), "ed25519": ed_key()}
    shares = {"secp256k1": share_hex(), "ed25519": share_hex()}
    up = session(api, wallet, "sign_up", node_pubkey)
    wallets = {c: {"public_key": keys[c], "share": shares[c]} for c in keys}
    r = up.call(f"{V2}/register", "register", {"wallets": wallets})
    assert (r.status_code, r.content) == (200, b'{"success":true}')
    # the same login again: same key, a second operation (docs/operator.md)
    inn = session(api, wallet, "sign_in", node_pubkey, headers=up.headers, key=up.key)
    r = inn.call(V2, "get_key_shares", {"wallets": keys})
    assert {c: v["share"] for c, v in r.json()["data"].items()} == shares


def test_sign_in_reshare_allows_one_get_then_reshare(api, user, node_pubkey):
    s = session(api, user, "sign_in_reshare", node_pubkey)
    r = s.call(V2, "get_key_shares", {"wallets": dict(user.keys)})
    assert r.status_code == 200
    r = s.call(V2, "get_key_shares", {"wallets": dict(user.keys)})
    assert error(r) == (
        409,
        "API_ALREADY_CALLED",
        'API "get_key_shares" has already been called for this session',
    )
    wallets = {c: {"public_key": user.keys[c], "share": user.shares[c]} for c in user.keys}
    r = s.call(f"{V2}/reshare", "reshare", {"wallets": wallets})
    assert r.status_code == 200
    assert error(s.call(f"{V2}/reshare", "reshare", {"wallets": wallets}))[0:2] == (
        400,
        "INVALID_REQUEST",
    )


def test_register_reshare_a_refused_call_is_not_recorded(api, node_pubkey):
    wallet = Wallet(api)
    s = session(api, wallet, "register_reshare", node_pubkey)
    keys = {"secp256k1": secp_key(), "ed25519": ed_key()}
    r = s.call(V2, "get_key_shares", {"wallets": keys})
    assert error(r)[:2] == (404, "USER_NOT_FOUND")
    wallets = {c: {"public_key": keys[c], "share": share_hex()} for c in keys}
    r = s.call(f"{V2}/reshare/register", "reshare_register", {"wallets": wallets})
    assert r.status_code == 200
    # get_key_shares was not recorded, but the session is complete now
    assert error(s.call(V2, "get_key_shares", {"wallets": keys}))[2].endswith("COMPLETED")


def test_add_ed25519(api, node_pubkey):
    wallet = Wallet(api)
    secp = secp_key()
    r = wallet.post(
        "/keyshare/v1/register",
        {"curve_type": "secp256k1", "public_key": secp, "share": share_hex()},
    )
    assert r.status_code == 200
    s = session(api, Wallet(api, wallet.user_id), "add_ed25519", node_pubkey)
    ed, ed_share = ed_key(), share_hex()
    r = s.call(f"{V2}/register/ed25519", "register_ed25519", {"public_key": ed, "share": ed_share})
    assert r.status_code == 200
    r = s.call(V2, "get_key_shares", {"wallets": {"ed25519": ed}})
    assert r.json()["data"]["ed25519"]["share"] == ed_share


def concurrently(n: int, call) -> list:
    barrier, results = threading.Barrier(n), [None] * n

    def run(i):
        barrier.wait()
        results[i] = call()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


@pytest.mark.parametrize("operation", ["sign_in", "sign_in_reshare"])
def test_sixteen_concurrent_calls_one_winner(api, user, node_pubkey, operation):
    import requests

    s = session(api, user, operation, node_pubkey)
    body = {
        "wallets": dict(user.keys),
        "auth_type": "telegram",
        "cr_session_id": s.session_id,
        "cr_signature": s.signature("get_key_shares"),
    }
    # own connections: truly simultaneous requests
    results = concurrently(
        16, lambda: requests.post(api.url + V2, json=body, headers=s.headers, timeout=30)
    )
    statuses = sorted(r.status_code for r in results)
    assert statuses.count(200) == 1, statuses
    for r in results:
        if r.status_code != 200:
            assert "data" not in r.json()
            code = r.json()["code"]
            # a loser that arrived after the winner committed a final call
            # sees the completed session first (the reference's check order)
            assert code == "API_ALREADY_CALLED" or (
                operation == "sign_in" and code == "INVALID_REQUEST"
            )
    if operation == "sign_in_reshare":
        assert statuses == [200] + [409] * 15


def test_openapi_lists_the_commit_route_and_the_reveal_fields(api):
    doc = api.get("/openapi.json").json()
    for path in ("/keyshare/v2/commit", "/commit-reveal/v2/commit"):
        commit = doc["paths"][path]["post"]
        assert commit["tags"] == ["Commit-Reveal"] and commit["security"] == []
        body = commit["requestBody"]["content"]["application/json"]["schema"]
        assert body["properties"]["operation_type"]["enum"] == list(OPERATIONS)
        assert {"200", "400", "409"} <= set(commit["responses"])
    get = doc["paths"]["/keyshare/v2"]["post"]
    props = get["requestBody"]["content"]["application/json"]["schema"]["properties"]
    assert {"cr_session_id", "cr_signature", "auth_type"} <= set(props)
    assert {"404", "409", "410"} <= set(get["responses"])
    assert "INVALID_SIGNATURE" in get["responses"]["400"]["description"]
