"""Numbers written as JavaScript writes them (String(n), ECMAScript
Number::toString): in echoed messages, Telegram's data-check-string and
identities. The expected texts were printed by Node 22 for the same JSON."""

from __future__ import annotations

import json

import pytest

from services.api.web.jsvalues import js_string

NODE_STRING = [
    ("123456789012345680000", "123456789012345680000"),
    ("9007199254740993", "9007199254740992"),
    ("-861892644743758908", "-861892644743758800"),
    ("1e20", "100000000000000000000"),
    ("1e21", "1e+21"),
    ("123e19", "1.23e+21"),
    ("1234567890123456789012", "1.2345678901234568e+21"),
    ("1e-6", "0.000001"),
    ("1.5e-6", "0.0000015"),
    ("4.35e-5", "0.0000435"),
    ("1e-7", "1e-7"),
    ("1.2345e-7", "1.2345e-7"),
    ("-2.5e-9", "-2.5e-9"),
    ("5e-324", "5e-324"),
    ("1.7976931348623157e308", "1.7976931348623157e+308"),
    ("-0.0", "0"),
    ("100", "100"),
    ("123.456", "123.456"),
]


@pytest.mark.parametrize("literal,expected", NODE_STRING)
def test_numbers_print_as_javascript_prints_them(literal, expected):
    assert js_string(json.loads(literal)) == expected


@pytest.mark.parametrize("literal,expected", NODE_STRING[:8])
def test_an_echoed_number_is_javascripts_text(api, literal, expected):
    raw = '{"auth_type":' + literal + ',"public_key":"00"}'
    r = api.post(
        "/keyshare/v1/",
        data=raw,
        headers={"Content-Type": "application/json", "Authorization": "Bearer x"},
    )
    assert (r.status_code, r.json()["msg"]) == (401, f"Invalid auth_type: {expected}")
