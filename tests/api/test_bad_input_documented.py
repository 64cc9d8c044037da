"""Regression tests for what the generated-request fuzzer found undocumented
(issue 16): every body-level error a POST route sends is in /openapi.json,
and the request schemas say what the routes require."""

from __future__ import annotations

import re

import pytest

from tests.support.keyshare_helpers import POST_ROUTES


@pytest.fixture(scope="module")
def document(api):
    return api.get("/openapi.json").json()


@pytest.mark.parametrize("route", POST_ROUTES)
@pytest.mark.parametrize(
    "raw,headers,status,code",
    [
        (b"\x00", {"Content-Type": "application/json"}, 400, "INVALID_REQUEST"),
        (b'"text"', {"Content-Type": "application/json"}, 400, "INVALID_REQUEST"),
        (
            b"{}",
            {"Content-Type": "application/json; charset=latin-1"},
            415,
            "UNSUPPORTED_MEDIA_TYPE",
        ),
        (
            b'{"a":"' + b"x" * 200_000 + b'"}',
            {"Content-Type": "application/json"},
            413,
            "PAYLOAD_TOO_LARGE",
        ),
    ],
)
def test_body_errors_are_sent_and_documented(api, document, route, raw, headers, status, code):
    r = api.post(route, data=raw, headers=headers)
    assert (r.status_code, r.json()["code"]) == (status, code)
    documented = document["paths"][route]["post"]["responses"][str(status)]
    assert code in documented["description"]
    assert documented["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/Error"
    }


def test_v1_public_key_has_a_pattern(document):
    for route in ("/keyshare/v1/register", "/keyshare/v1", "/keyshare/v1/check"):
        schema = document["paths"][route]["post"]["requestBody"]["content"]["application/json"]
        pattern = schema["schema"]["properties"]["public_key"]["pattern"]
        assert re.match(pattern, "02" + "ab" * 32) and re.match(pattern, "ab" * 32)
        assert not re.match(pattern, "ab" * 31) and not re.match(pattern, "zz" * 33)


def test_v2_register_requires_both_wallets(document):
    body = document["paths"]["/keyshare/v2/register"]["post"]["requestBody"]["content"]
    wallets = body["application/json"]["schema"]["properties"]["wallets"]
    assert sorted(wallets["required"]) == ["ed25519", "secp256k1"]
    reshare = document["paths"]["/keyshare/v2/reshare"]["post"]["requestBody"]["content"]
    assert "required" not in reshare["application/json"]["schema"]["properties"]["wallets"]


def test_status_routes_document_their_bodies(document):
    health = document["paths"]["/health"]["get"]["responses"]
    assert set(health) >= {"200", "503"}
    assert health["503"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/Health"
    }
    metrics = document["paths"]["/metrics"]["get"]["responses"]["200"]
    assert "text/plain" in metrics["content"]
