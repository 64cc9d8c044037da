"""A key share's ksn3 binding is written out field by field (fast); its text
must stay exactly the sorted-key JSON every sealed share in a database was
sealed with, whatever the owner's identity contains."""

from __future__ import annotations

import pytest

from shared.crypto.binding import SHARE_TAG, _encode, share_binding

WALLET = "7f1c0c8e-7d5c-4a86-9d4f-3b1a2f0e9c11"

AWKWARD_TEXT = [
    "google_1234567890",
    "",
    'quote " and backslash \\ and slash /',
    "new\nline\ttab\rreturn\x00nul\x1fcontrol\x7fdel",
    "ünïcödé ✓ 漢字 😀",
    "lone surrogate \ud800 and \udfff",
    'looks like json","wallet_id":"someone-else',
    "a" * 300,
]


def reference_text(wallet_id, auth_type, user_auth_id, curve_type, public_key):
    return _encode(
        SHARE_TAG,
        {
            "auth_type": auth_type,
            "curve_type": curve_type,
            "public_key": public_key.hex() if public_key is not None else None,
            "user_auth_id": user_auth_id,
            "wallet_id": wallet_id,
        },
    )


@pytest.mark.parametrize("text", AWKWARD_TEXT)
def test_every_field_encodes_as_sorted_key_json_does(text: str) -> None:
    for args in [
        (WALLET, "telegram", text, "secp256k1", bytes.fromhex("02" + "ab" * 32)),
        (WALLET, text, "google_1", "ed25519", bytes(32)),
        (text, "auth0", "user@example.com", text, b"\x00\xff"),
    ]:
        assert share_binding(*args).owner == reference_text(*args)


def test_missing_owner_fields_encode_as_null() -> None:
    args = (WALLET, None, None, None, None)
    owner = share_binding(*args).owner
    assert owner == reference_text(*args)
    assert owner == (
        'ksn3/key_share:{"auth_type":null,"curve_type":null,"public_key":null,'
        f'"user_auth_id":null,"wallet_id":"{WALLET}"}}'
    )


def test_the_text_of_a_known_owner_is_pinned() -> None:
    """Shares already sealed open only with these exact bytes."""
    owner = share_binding(WALLET, "google", "google_1", "secp256k1", bytes.fromhex("02ab")).owner
    assert owner == (
        'ksn3/key_share:{"auth_type":"google","curve_type":"secp256k1",'
        '"public_key":"02ab","user_auth_id":"google_1",'
        '"wallet_id":"7f1c0c8e-7d5c-4a86-9d4f-3b1a2f0e9c11"}'
    )


def test_a_field_that_is_not_text_is_refused() -> None:
    with pytest.raises(TypeError):
        share_binding(WALLET, "google", 12345, "secp256k1", None)  # type: ignore[arg-type]
