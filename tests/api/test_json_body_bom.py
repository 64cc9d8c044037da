"""A JSON body that starts with a UTF-8 byte order mark (spec §2.4): the
reference's body parser (iconv-lite) drops the mark before parsing, so the
body is read as without it."""

from __future__ import annotations

import json

from tests.support.keyshare_helpers import Wallet, secp_key, share_hex

BOM = b"\xef\xbb\xbf"
JSON = {"Content-Type": "application/json"}


def test_a_leading_byte_order_mark_is_ignored(api):
    wallet, key, share = Wallet(api), secp_key(), share_hex()
    body = {"auth_type": "telegram", "curve_type": "secp256k1", "public_key": key, "share": share}
    r = api.post(
        "/keyshare/v1/register",
        data=BOM + json.dumps(body).encode(),
        headers={**JSON, **wallet.headers},
    )
    assert (r.status_code, r.content) == (200, b'{"success":true}')
    check = {"user_auth_id": wallet.user_auth_id, "auth_type": "telegram", "public_key": key}
    r = api.post("/keyshare/v1/check", data=BOM + json.dumps(check).encode(), headers=JSON)
    assert (r.status_code, r.json()) == (200, {"success": True, "data": {"exists": True}})


def test_a_body_of_only_the_mark_is_an_empty_body(api):
    for raw in (b"", BOM):
        r = api.post("/keyshare/v2/check", data=raw, headers=JSON)
        assert (r.status_code, r.json()["msg"]) == (400, "wallets is required")


def test_a_mark_that_is_not_leading_is_still_malformed_json(api):
    r = api.post("/keyshare/v2/check", data=b"{}" + BOM, headers=JSON)
    assert (r.status_code, r.json()["msg"]) == (400, "Malformed JSON in request body")


def test_a_body_of_only_whitespace_is_malformed_json_not_an_empty_body(api):
    """The reference's strict parser wants "{" or "[" first; only a body of
    no bytes at all is read as {}."""
    for raw in (b" ", b"\n", b" \t\r\n", BOM + b" ", b"\x0b{}"):
        r = api.post("/keyshare/v2/check", data=raw, headers=JSON)
        assert (r.status_code, r.json()["msg"]) == (400, "Malformed JSON in request body"), raw
    r = api.post("/keyshare/v2/check", data=b' \n{"wallets": {}}\n ', headers=JSON)
    assert r.status_code == 200, r.text  # whitespace around the JSON is fine
