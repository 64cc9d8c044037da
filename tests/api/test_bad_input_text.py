"""Text Postgres cannot store (NUL, unpaired surrogates, more characters
than the column holds) never reaches SQL, a key derivation or a response
renderer unchecked: every such request gets a clear JSON answer in the
spec's envelope, reference-identical where the reference answers a 4xx, and
changes nothing (issue 16)."""

from __future__ import annotations

import json
import os

import pytest

from tests.support.fakes.telegram import bearer
from tests.support.keyshare_helpers import (
    Wallet,
    ed_key,
    keyshare_bodies,
    secp_key,
    share_hex,
    table_counts,
)

LONE = "\ud800"  # an unpaired surrogate: valid JSON escape, not encodable as UTF-8
JSON = {"Content-Type": "application/json"}
AUTH_ROUTES = [
    "/keyshare/v1/register",
    "/keyshare/v1",
    "/keyshare/v1/reshare",
    "/keyshare/v2",
    "/keyshare/v2/register",
    "/keyshare/v2/register/ed25519",
    "/keyshare/v2/reshare",
    "/keyshare/v2/reshare/register",
]
REGISTER_ROUTES = [
    "/keyshare/v1/register",
    "/keyshare/v2/register",
    "/keyshare/v2/reshare/register",
]


def raw_post(api, path: str, body: dict, headers: dict | None = None):
    """POST ``body`` as JSON with every non-ASCII character escaped, so lone
    surrogates travel as ``\\ud800`` escapes exactly as a hostile client sends them."""
    return api.post(path, data=json.dumps(body), headers={**JSON, **(headers or {})})


def assert_error(response, status: int, code: str, msg: str) -> None:
    assert response.status_code == status, response.text[:300]
    assert response.headers["Content-Type"] == "application/json; charset=utf-8"
    assert response.json() == {"success": False, "code": code, "msg": msg}
    assert response.headers.get("X-Request-Id")


def key_message(route: str, curve: str, reason: str) -> str:
    if route.startswith("/keyshare/v1"):
        return f"Public key is not valid: {reason}"
    return f"Public key is not valid for {curve}: {reason}"


def share_message(route: str, curve: str, reason: str) -> str:
    if route.startswith("/keyshare/v1") or route == "/keyshare/v2/register/ed25519":
        return f"Share is not valid: {reason}"
    return f"Share is not valid for {curve}: {reason}"


ALL_ROUTES = list(keyshare_bodies("", "", "", ""))


@pytest.mark.parametrize("route", ALL_ROUTES)
@pytest.mark.parametrize(
    "value,reason",
    [
        (LONE, "Invalid length. Expected: {n} characters, Actual: 1"),
        ("ab" * 10 + LONE, "Invalid length. Expected: {n} characters, Actual: 21"),
        ("0" * 200 + LONE + "\udc00", "Invalid length. Expected: {n} characters, Actual: 202"),
    ],
)
def test_lone_surrogate_public_key_is_the_reference_400(api, db, route, value, reason):
    before = table_counts(db)
    body = keyshare_bodies(value, share_hex(), value, share_hex())[route]
    curve = "ed25519" if route == "/keyshare/v2/register/ed25519" else "secp256k1"
    n = 64 if curve == "ed25519" else 66
    r = raw_post(api, route, {"auth_type": "telegram", **body}, bearer())
    assert_error(r, 400, "PUBLIC_KEY_INVALID", key_message(route, curve, reason.format(n=n)))
    assert table_counts(db) == before


@pytest.mark.parametrize("route", ALL_ROUTES)
def test_surrogate_in_a_hex_sized_public_key_is_invalid_hex(api, route):
    curve = "ed25519" if route == "/keyshare/v2/register/ed25519" else "secp256k1"
    n = 64 if curve == "ed25519" else 66
    value = "0" * (n - 1) + LONE
    body = keyshare_bodies(value, share_hex(), value, share_hex())[route]
    r = raw_post(api, route, {"auth_type": "telegram", **body}, bearer())
    assert_error(
        r,
        400,
        "PUBLIC_KEY_INVALID",
        key_message(route, curve, "Invalid hexadecimal string format."),
    )


SHARE_ROUTES = [
    route for route in ALL_ROUTES if route not in ("/keyshare/v1", "/keyshare/v1/check")
]
SHARE_ROUTES = [r for r in SHARE_ROUTES if r not in ("/keyshare/v2", "/keyshare/v2/check")]


@pytest.mark.parametrize("route", SHARE_ROUTES)
def test_lone_surrogate_share_is_the_reference_400(api, db, route):
    before = table_counts(db)
    body = keyshare_bodies(secp_key(), LONE, ed_key(), LONE)[route]
    curve = "ed25519" if route == "/keyshare/v2/register/ed25519" else "secp256k1"
    r = raw_post(api, route, {"auth_type": "telegram", **body}, bearer())
    msg = share_message(route, curve, "Invalid length. Expected: 128 characters, Actual: 1")
    assert_error(r, 400, "SHARE_INVALID", msg)
    assert table_counts(db) == before


@pytest.fixture(scope="module")
def owner(api):
    """A registered user whose keys the check routes probe."""
    wallet = Wallet(api)
    wallet.secp, wallet.ed = secp_key(), ed_key()
    r = wallet.register_v2(wallet.secp, share_hex(), wallet.ed, share_hex())
    assert r.status_code == 200, r.text
    return wallet


UNSTORABLE_IDS = [
    pytest.param("{id}\u0000", id="nul"),
    pytest.param("{id}" + LONE, id="lone-surrogate"),
    pytest.param("{id}" + "x" * 300, id="overlong"),
]


@pytest.mark.parametrize("template", UNSTORABLE_IDS)
def test_v1_check_with_an_unstorable_user_auth_id_is_an_unknown_user(api, owner, template):
    body = {"public_key": owner.secp, "user_auth_id": template.format(id=owner.user_auth_id)}
    r = raw_post(api, "/keyshare/v1/check", {"auth_type": "telegram", **body})
    assert (r.status_code, r.json()) == (200, {"success": True, "data": {"exists": False}})


@pytest.mark.parametrize("template", UNSTORABLE_IDS)
def test_v2_check_with_an_unstorable_user_auth_id_is_an_unknown_user(api, owner, template):
    body = {
        "auth_type": "telegram",
        "user_auth_id": template.format(id=owner.user_auth_id),
        "wallets": {"secp256k1": owner.secp, "ed25519": owner.ed},
    }
    r = raw_post(api, "/keyshare/v2/check", body)
    assert r.status_code == 200, r.text
    assert r.json()["data"] == {"secp256k1": {"exists": False}, "ed25519": {"exists": False}}


@pytest.mark.parametrize("auth_type", ["telegram\u0000", "telegram" + LONE, "t" * 65])
@pytest.mark.parametrize("route", ["/keyshare/v1/check", "/keyshare/v2/check"])
def test_check_with_an_unstorable_auth_type_is_an_unknown_user(api, owner, route, auth_type):
    body = {"auth_type": auth_type, "user_auth_id": owner.user_auth_id}
    if route == "/keyshare/v1/check":
        body["public_key"] = owner.secp
    else:
        body["wallets"] = {"secp256k1": owner.secp}
    r = raw_post(api, route, body)
    assert r.status_code == 200, r.text
    exists = r.json()["data"] if route.endswith("v1/check") else r.json()["data"]["secp256k1"]
    assert exists == {"exists": False}


@pytest.mark.parametrize("template", UNSTORABLE_IDS)
def test_v2_check_without_auth_type_and_an_unstorable_user_auth_id(api, owner, template):
    """Found by the fuzzer: no auth_type (SQL NULL) let the id reach Postgres."""
    body = {
        "user_auth_id": template.format(id=owner.user_auth_id),
        "wallets": {"secp256k1": owner.secp, "ed25519": owner.ed},
    }
    r = raw_post(api, "/keyshare/v2/check", body)
    assert r.status_code == 200, r.text
    assert r.json()["data"] == {"secp256k1": {"exists": False}, "ed25519": {"exists": False}}


def test_check_still_finds_the_owner_with_storable_text(api, owner):
    body = {"auth_type": "telegram", "user_auth_id": owner.user_auth_id, "public_key": owner.secp}
    assert raw_post(api, "/keyshare/v1/check", body).json()["data"] == {"exists": True}


@pytest.mark.parametrize("route", ["/pg_dump/v1/backup", "/pg_dump/v1/restore"])
@pytest.mark.parametrize("password", [LONE, "test-admin-password" + LONE, "a\u0000b"])
def test_unencodable_admin_password_is_a_401(api, route, password):
    r = raw_post(api, route, {"password": password, "dump_path": "x.dump"})
    assert_error(r, 401, "UNAUTHORIZED", "Invalid admin password")


@pytest.mark.parametrize("route", AUTH_ROUTES)
def test_lone_surrogate_auth_type_is_echoed_like_json_stringify(api, route):
    r = raw_post(api, route, {"auth_type": "a" + LONE}, {"Authorization": "Bearer x"})
    assert_error(r, 401, "UNAUTHORIZED", "Invalid auth_type: a" + LONE)
    # JSON.stringify's escape, so the body stays valid UTF-8
    assert r.content.endswith(b'"msg":"Invalid auth_type: a\\ud800"}')


@pytest.mark.parametrize("route", ["/keyshare/v1/register", "/keyshare/v1/reshare"])
def test_lone_surrogate_curve_type_is_echoed(api, route):
    body = {"auth_type": "telegram", "curve_type": LONE, "public_key": secp_key()}
    body["share"] = share_hex()
    r = raw_post(api, route, body, bearer())
    assert_error(r, 400, "CURVE_TYPE_NOT_SUPPORTED", "Curve type not supported: " + LONE)


@pytest.mark.parametrize("dump_path", [LONE, "a\u0000b.dump", "x" * 5000])
def test_unusable_dump_path_is_not_found(api, dump_path):
    r = raw_post(
        api, "/pg_dump/v1/restore", {"password": "test-admin-password", "dump_path": dump_path}
    )
    assert_error(r, 400, "DUMP_FILE_NOT_FOUND", f"Dump file not found at path: {dump_path}")


def test_a_dump_file_whose_name_is_not_utf8_is_refused_before_any_job(start_api, module_tmp, db):
    folder = module_tmp / "odd_names"
    folder.mkdir()
    (folder / os.fsdecode(b"bad\xff.dump")).write_bytes(b"PGDMP-not-really")
    server = start_api(dump_dir=folder, backup_job_timeout_seconds=2)
    with db.cursor() as cur:
        cur.execute("SELECT count(*) FROM ksn_jobs")
        (jobs_before,) = cur.fetchone()
    body = {"password": "test-admin-password", "dump_path": "bad\udcff.dump"}
    r = raw_post(server, "/pg_dump/v1/restore", body)
    assert_error(r, 400, "INVALID_DUMP_FILE", "Dump file name is not UTF-8 text: bad\udcff.dump")
    with db.cursor() as cur:
        cur.execute("SELECT count(*) FROM ksn_jobs")
        assert cur.fetchone() == (jobs_before,)


# --- identities from the bearer that cannot be stored -------------------------------


def telegram_post(api, user_id: str, route: str, body: dict):
    return raw_post(api, route, {"auth_type": "telegram", **body}, bearer(user_id))


@pytest.mark.parametrize("user_id", ["1\u0000", "12" + LONE, "9" * 247])
@pytest.mark.parametrize("route", REGISTER_ROUTES)
def test_registering_an_unstorable_identity_is_a_400(api, db, route, user_id):
    before = table_counts(db)
    body = keyshare_bodies(secp_key(), share_hex(), ed_key(), share_hex())[route]
    r = telegram_post(api, user_id, route, body)
    assert r.status_code == 400, r.text
    assert r.json()["code"] == "INVALID_REQUEST"
    assert "user_auth_id" in r.json()["msg"]
    assert table_counts(db) == before


def test_the_longest_storable_telegram_id_registers(api, db):
    user_id = "9" * 246  # "telegram_" + 246 = 255 characters, the column's size
    r = telegram_post(
        api,
        user_id,
        "/keyshare/v1/register",
        keyshare_bodies(secp_key(), share_hex(), "", "")["/keyshare/v1/register"],
    )
    assert r.status_code == 200, r.text


@pytest.mark.parametrize("user_id", ["1\u0000", "12" + LONE, "9" * 247])
@pytest.mark.parametrize(
    "route,status,code,msg",
    [
        (
            "/keyshare/v1",
            404,
            "USER_NOT_FOUND",
            "User not found: telegram_{id} (auth_type: telegram)",
        ),
        ("/keyshare/v2", 404, "USER_NOT_FOUND", "User not found"),
        ("/keyshare/v2/register/ed25519", 404, "USER_NOT_FOUND", "User not found"),
        ("/keyshare/v2/reshare", 404, "USER_NOT_FOUND", "User not found"),
    ],
)
def test_looking_up_an_unstorable_identity_is_an_unknown_user(
    api, owner, route, status, code, msg, user_id
):
    body = keyshare_bodies(owner.secp, share_hex(), owner.ed, share_hex())[route]
    r = telegram_post(api, user_id, route, body)
    assert_error(r, status, code, msg.format(id=user_id))


def test_v1_reshare_of_an_unstorable_identity_checks_the_wallet_first(api, owner):
    body = {"curve_type": "secp256k1", "public_key": owner.secp, "share": share_hex()}
    r = telegram_post(api, "1\u0000", "/keyshare/v1/reshare", body)
    assert_error(r, 404, "USER_NOT_FOUND", "User not found: telegram_1\u0000 (auth_type: telegram)")
    unknown = secp_key()
    r = telegram_post(api, "1\u0000", "/keyshare/v1/reshare", {**body, "public_key": unknown})
    assert_error(r, 404, "WALLET_NOT_FOUND", f"Wallet not found: {unknown}")
