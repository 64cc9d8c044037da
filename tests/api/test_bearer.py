"""The bearer middleware's check order and messages (spec §4.2)."""

import pytest

from services.api.auth.base import AuthFailure
from services.api.auth.bearer import identity_from_claims
from tests.support.fakes.telegram import bearer

BODY = {"auth_type": "telegram", "wallets": {}}


@pytest.mark.parametrize("header", [None, "bearer x", "Token x", "Bearerx", ""])
def test_header_must_start_with_exact_bearer_prefix(api, header):
    headers = {} if header is None else {"Authorization": header}
    r = api.post("/keyshare/v2/", json=BODY, headers=headers)
    assert r.status_code == 401
    assert r.json()["msg"] == "Authorization header with Bearer token required"


@pytest.mark.parametrize(
    "auth_type,shown",
    [
        ("github", "github"),
        ("", ""),
        (5, "5"),
        (True, "true"),
        ([1, 2], "1,2"),
        ({}, "[object Object]"),
    ],
)
def test_unknown_auth_type(api, auth_type, shown):
    r = api.post("/keyshare/v2/", json={**BODY, "auth_type": auth_type}, headers=bearer())
    assert r.status_code == 401
    assert r.json() == {
        "success": False,
        "code": "UNAUTHORIZED",
        "msg": f"Invalid auth_type: {shown}",
    }


def test_auth_type_defaults_to_google(api):
    r = api.post("/keyshare/v2/", json={"wallets": {}}, headers={"Authorization": "Bearer garbage"})
    assert r.status_code == 401 and r.json()["code"] == "UNAUTHORIZED"


def test_auth_is_checked_before_the_body(api):
    r = api.post("/keyshare/v2/register", json={"auth_type": "telegram"}, headers={})
    assert r.status_code == 401


def test_token_is_trimmed(api):
    header = bearer()["Authorization"]
    r = api.post("/keyshare/v2/", json=BODY, headers={"Authorization": header + "   "})
    assert r.json()["code"] == "USER_NOT_FOUND"


@pytest.mark.parametrize(
    "auth_type,claims,expected",
    [
        ("google", {"sub": "1098", "email": "a@b.c"}, "google_1098"),
        ("auth0", {"sub": "auth0|1", "email": "Alice@Example.com"}, "Alice@Example.com"),
        ("x", {"id": "44"}, "x_44"),
        ("discord", {"id": "77", "email": "d@e.f"}, "discord_77"),
        ("telegram", {"id": 987654321}, "telegram_987654321"),
    ],
)
def test_identity_strings(auth_type, claims, expected):
    assert identity_from_claims(auth_type, claims).user_auth_id == expected


@pytest.mark.parametrize(
    "auth_type,claims,missing",
    [
        ("google", {"sub": "1"}, "(sub or email)"),
        ("auth0", {"email": "a@b.c"}, "(email or sub)"),
        ("x", {"name": "n"}, "(id)"),
        ("discord", {"id": ""}, "(id)"),
    ],
)
def test_missing_identity_fields(auth_type, claims, missing):
    with pytest.raises(AuthFailure) as info:
        identity_from_claims(auth_type, claims)
    assert info.value.msg == f"Invalid token: missing required field {missing}"
