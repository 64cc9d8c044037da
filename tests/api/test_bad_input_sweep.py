"""A generated sweep of bad requests over every key share route: each gets a
JSON 4xx and changes nothing (never a 5xx, never a traceback)."""

import itertools
import json

import pytest

from tests.support.fakes.telegram import bearer
from tests.support.keyshare_helpers import KEYSHARE_ROUTES, table_counts

RAW_BODIES = [
    b"",
    b"null",
    b"5",
    b"true",
    b'"text"',
    b"[]",
    b"[1,2]",
    b"{",
    b'{"a":}',
    b'{"auth_type":"telegram","wallets":{"secp256k1":"\xff\xfe"}}',
    b"\xff\xfe\xfd",
    b"[" * 5000 + b"]" * 5000,
    b'{"a":NaN}',
    b'{"a":Infinity}',
]


def nested(depth: int) -> list:
    """An array nested ``depth`` deep: still JSON the parser takes (~980)."""
    value: list = ["x"]
    for _ in range(depth - 1):
        value = [value]
    return value


DEEP = nested(900)  # String() of it recursed ~1,800 frames deep: a 500 before
BAD_VALUES = [
    DEEP,
    None,
    0,
    -1,
    1.5,
    True,
    [],
    {},
    "",
    "zz",
    "0x" + "00" * 32,
    "ab" * 1000,
    "é" * 66,
    "\u0000" * 66,
    {"public_key": 5},
    ["02" + "00" * 32],
]
FIELDS = ["public_key", "share", "curve_type", "auth_type", "wallets", "user_auth_id"]


def json_bodies():
    for field, value in itertools.product(FIELDS, BAD_VALUES):
        yield {"auth_type": "telegram", field: value}
    for curve, value in itertools.product(["secp256k1", "ed25519"], BAD_VALUES):
        yield {"auth_type": "telegram", "wallets": {curve: value}}
        yield {"auth_type": "telegram", "wallets": {curve: {"public_key": value, "share": value}}}
    yield {"auth_type": "telegram", "wallets": {"secp256k1": "02" + "00" * 32, "other": 1}}


def assert_clean_4xx(response):
    assert 400 <= response.status_code < 500, (response.status_code, response.text[:300])
    assert response.headers["Content-Type"] == "application/json; charset=utf-8"
    body = response.json()
    assert (
        body["success"] is False and isinstance(body["code"], str) and isinstance(body["msg"], str)
    )
    assert "Traceback" not in response.text


@pytest.mark.parametrize("route", KEYSHARE_ROUTES)
def test_raw_bodies(api, db, route):
    before = table_counts(db)
    for raw, authed in itertools.product(RAW_BODIES, (True, False)):
        headers = {"Content-Type": "application/json", **(bearer() if authed else {})}
        response = api.post(route, data=raw, headers=headers)
        if response.status_code == 200:  # an empty/array body reads as {} (spec §2.4)
            assert raw in (b"", b"[]", b"[1,2]") or raw.startswith(b"[")
            continue
        assert_clean_4xx(response)
    assert table_counts(db) == before


@pytest.mark.parametrize("route", KEYSHARE_ROUTES)
def test_wrong_types_and_values(api, db, route):
    for body in json_bodies():
        before = table_counts(db)
        response = api.post(
            route, data=json.dumps(body), headers={"Content-Type": "application/json", **bearer()}
        )
        if response.status_code == 200:
            # e.g. check answering exists:false, or reshare/register naming no curve
            # (which creates the user, as the reference does)
            continue
        assert_clean_4xx(response)
        assert table_counts(db) == before, body


@pytest.mark.parametrize("route", KEYSHARE_ROUTES)
def test_other_content_types_read_as_empty_bodies(api, route):
    response = api.post(
        route, data='{"auth_type":"telegram"}', headers={"Content-Type": "text/plain", **bearer()}
    )
    assert response.status_code < 500
    if response.status_code != 200:
        assert_clean_4xx(response)


def test_oversized_body_is_json_413(api):
    response = api.post(
        "/keyshare/v1/check",
        data=b'{"a":"' + b"x" * 200_000 + b'"}',
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == 413
    assert response.json()["code"] == "PAYLOAD_TOO_LARGE"


def test_unsupported_charset_is_415(api):
    response = api.post(
        "/keyshare/v1/check",
        data=b"{}",
        headers={"Content-Type": "application/json; charset=latin-1"},
    )
    assert response.status_code == 415


def test_the_reference_crash_request_is_a_400(api):
    response = api.post("/keyshare/v2/check", json={})
    assert response.status_code == 400
    assert response.json() == {
        "success": False,
        "code": "INVALID_REQUEST",
        "msg": "wallets is required",
    }


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE", "PATCH"])
def test_wrong_methods_are_json(api, method):
    response = api.request(method, "/keyshare/v2/register")
    assert response.status_code in (404, 405)
    assert response.json()["success"] is False


ADMIN_AND_COMMIT_ROUTES = [
    "/keyshare/v2/commit",
    "/pg_dump/v1/backup",
    "/pg_dump/v1/restore",
    "/pg_dump/v1/get_backup_history",
]
OTHER_FIELDS = [
    "password",
    "dump_path",
    "days",
    "session_id",
    "operation_type",
    "client_ephemeral_pubkey",
    "id_token_hash",
    "cr_session_id",
    "cr_signature",
]


@pytest.mark.parametrize("route", ADMIN_AND_COMMIT_ROUTES + list(KEYSHARE_ROUTES))
def test_deeply_nested_values_in_every_field_are_4xx_or_served(api, db, route):
    before = table_counts(db)
    for field in FIELDS + OTHER_FIELDS:
        for authed in (True, False):
            headers = {"Content-Type": "application/json", **(bearer() if authed else {})}
            body = {"auth_type": "telegram", field: DEEP}
            response = api.post(route, data=json.dumps(body), headers=headers)
            assert response.status_code < 500, (field, response.text[:300])
            if response.status_code != 200:
                assert_clean_4xx(response)
    assert table_counts(db) == before
