"""v2 wallet entries that are not objects: the reference reads
``.public_key`` of them, gets undefined and answers PUBLIC_KEY_INVALID
"Input must be a string." (issue 16 item 2)."""

from __future__ import annotations

import pytest

from tests.support.keyshare_helpers import Wallet, ed_key, secp_key, share_hex

ROUTES = ["/keyshare/v2/register", "/keyshare/v2/reshare", "/keyshare/v2/reshare/register"]
NOT_OBJECTS = ["abc", 5, -1.5, [1, 2], ["02" + "00" * 32], True]


@pytest.mark.parametrize("route", ROUTES)
@pytest.mark.parametrize("entry", NOT_OBJECTS)
def test_non_object_secp256k1_entry(api, db, route, entry):
    ed = {"public_key": ed_key(), "share": share_hex()}
    r = Wallet(api).post(route, {"wallets": {"secp256k1": entry, "ed25519": ed}})
    assert (r.status_code, r.json()) == (
        400,
        {
            "success": False,
            "code": "PUBLIC_KEY_INVALID",
            "msg": "Public key is not valid for secp256k1: Input must be a string.",
        },
    )


@pytest.mark.parametrize("route", ROUTES)
@pytest.mark.parametrize("entry", NOT_OBJECTS)
def test_non_object_ed25519_entry(api, route, entry):
    secp = {"public_key": secp_key(), "share": share_hex()}
    r = Wallet(api).post(route, {"wallets": {"secp256k1": secp, "ed25519": entry}})
    assert (r.status_code, r.json()) == (
        400,
        {
            "success": False,
            "code": "PUBLIC_KEY_INVALID",
            "msg": "Public key is not valid for ed25519: Input must be a string.",
        },
    )


@pytest.mark.parametrize("route", ROUTES)
@pytest.mark.parametrize("body", [{}, {"wallets": None}])
def test_missing_or_null_wallets_stays_invalid_request(api, route, body):
    r = Wallet(api).post(route, body)
    assert (r.status_code, r.json()["code"], r.json()["msg"]) == (
        400,
        "INVALID_REQUEST",
        "wallets is required",
    )
