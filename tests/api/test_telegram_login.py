"""Telegram login payload verification (spec §4.7, vector in §15)."""

import json

import pytest

from services.api.auth.base import AuthFailure
from services.api.auth.telegram import TelegramVerifier, data_check_string, lenient_hex
from shared.config import load_config
from tests.support.fakes.telegram import BOT_TOKEN, login_payload

VECTOR = {
    "id": "987654321",
    "first_name": "Alice",
    "username": "alice",
    "auth_date": "1700000000",
    "photo_url": "",
    "hash": "579d013cfe909ce14debea1f4961bc75c1b50434250ce7b2c9f2ec7eb0f76f01",
}


def verifier(now: float) -> TelegramVerifier:
    return TelegramVerifier(load_config({"TELEGRAM_BOT_TOKEN": BOT_TOKEN}), clock=lambda: now)


def test_reference_vector_data_check_string():
    assert (
        data_check_string(VECTOR)
        == "auth_date=1700000000\nfirst_name=Alice\nid=987654321\nusername=alice"
    )


def test_reference_vector_verifies_with_a_fake_clock():
    assert verifier(1700000000 + 60).verify(json.dumps(VECTOR))["id"] == "987654321"


def test_uppercase_and_trailing_garbage_hash_is_lenient_like_node():
    payload = {**VECTOR, "hash": VECTOR["hash"].upper() + "zz"}
    assert verifier(1700000100).verify(json.dumps(payload))


@pytest.mark.parametrize(
    "change,message",
    [
        ({"hash": "00" * 32}, "Hash verification failed"),
        ({"hash": "abcd"}, "Invalid hash length"),
        ({"first_name": "Mallory"}, "Hash verification failed"),
        ({"id": ""}, "Missing required fields: id, auth_date, hash"),
        ({"hash": None}, "Missing required fields: id, auth_date, hash"),
    ],
)
def test_rejections(change, message):
    with pytest.raises(AuthFailure) as info:
        verifier(1700000100).verify(json.dumps({**VECTOR, **change}))
    assert info.value.msg == message


def test_auth_date_window():
    with pytest.raises(AuthFailure, match="too old"):
        verifier(1700000000 + 86401).verify(json.dumps(VECTOR))
    with pytest.raises(AuthFailure, match="too old"):
        verifier(1700000000 - 5).verify(json.dumps(VECTOR))
    assert verifier(1700000000 + 86400).verify(json.dumps(VECTOR))


def test_auth_date_parsed_like_parse_int():
    payload = login_payload(auth_date=1700000000)
    payload["auth_date"] = "1700000000abc"
    from services.api.auth.telegram import expected_hash

    payload["hash"] = expected_hash(
        BOT_TOKEN, {k: v for k, v in payload.items() if k != "hash"}
    ).hex()
    assert verifier(1700000010).verify(json.dumps(payload))
    payload["auth_date"] = "abc"
    payload["hash"] = expected_hash(
        BOT_TOKEN, {k: v for k, v in payload.items() if k != "hash"}
    ).hex()
    with pytest.raises(AuthFailure, match="Invalid auth_date format"):
        verifier(1700000010).verify(json.dumps(payload))


def test_numbers_and_booleans_are_stringified_the_javascript_way():
    payload = {"id": 42, "auth_date": 1700000000, "is_bot": False, "hash": "x"}
    assert data_check_string(payload) == "auth_date=1700000000\nid=42\nis_bot=false"


def test_not_json_and_not_an_object():
    with pytest.raises(AuthFailure, match="Expected JSON string"):
        verifier(0).verify("{not json")
    for token in ("null", "[1]", "5"):
        with pytest.raises(AuthFailure, match="Missing required fields"):
            verifier(0).verify(token)


def test_lenient_hex_stops_at_first_invalid_pair():
    assert lenient_hex("abcdzz00") == bytes.fromhex("abcd")
    assert lenient_hex("abc") == bytes.fromhex("ab")


def test_non_ascii_name_verifies_over_http(api):
    payload = login_payload("31337", first_name="Zoë")
    header = "Bearer " + json.dumps(payload, ensure_ascii=False, separators=(",", ":"))
    r = api.post(
        "/keyshare/v2/",
        json={"auth_type": "telegram", "wallets": {}},
        headers={"Authorization": header.encode("latin-1")},
    )
    assert r.status_code == 404 and r.json()["code"] == "USER_NOT_FOUND"  # authenticated


def test_a_verified_payload_is_reused_only_while_its_age_allows():
    """The per-worker cache of verified payloads (issue 28): the same token
    verifies again without a new check, until it is too old; a changed token
    is checked anew; changing the returned claims does not change the cache."""
    now = [1700000000 + 60]
    check = TelegramVerifier(load_config({"TELEGRAM_BOT_TOKEN": BOT_TOKEN}), clock=lambda: now[0])
    token = json.dumps(VECTOR)
    claims = check.verify(token)
    claims["id"] = "tampered"
    check.bot_token = "another-bot-token"  # a hit does not check the hash again
    assert check.verify(token)["id"] == "987654321"
    with pytest.raises(AuthFailure, match="Hash verification failed"):
        check.verify(json.dumps({**VECTOR, "first_name": "Mallory"}))
    now[0] = 1700000000 + 86401
    with pytest.raises(AuthFailure, match="Hash verification failed"):
        check.verify(token)  # too old: dropped from the cache and checked anew
    check.bot_token = BOT_TOKEN
    with pytest.raises(AuthFailure, match="too old"):
        check.verify(token)
