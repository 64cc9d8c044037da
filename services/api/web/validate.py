"""Request field validation: the reference's hex rules (spec §1) and small
type checks, raising ApiError with the route's code and message prefix."""

from __future__ import annotations

import re
from typing import Any

from services.api.web.errors import ApiError
from services.api.web.jsvalues import js_length, js_string, js_truthy

# fullmatch, not ^…$: Python's $ also matches before a final newline, JS's does not.
HEX = re.compile(r"[0-9a-fA-F]*")
CURVES = ("secp256k1", "ed25519")
PUBLIC_KEY_BYTES = {"secp256k1": 33, "ed25519": 32}
SHARE_BYTES = 64


def hex_error(value: Any, size: int) -> str | None:
    """The reference's parse-hex error text, or None when ``value`` is valid."""
    if not isinstance(value, str):
        return "Input must be a string."
    if value == "":
        return "Invalid length or invalid bytesLength. Expected: > 0"
    length = js_length(value)
    if length != 2 * size:
        return f"Invalid length. Expected: {2 * size} characters, Actual: {length}"
    if not HEX.fullmatch(value):
        return "Invalid hexadecimal string format."
    return None


def parse_hex(value: Any, size: int, code: str, prefix: str) -> bytes:
    """Bytes of a hex field of ``size`` bytes, else ApiError(code, "<prefix>: <reason>")."""
    problem = hex_error(value, size)
    if problem is not None:
        raise ApiError(code, f"{prefix}: {problem}")
    return bytes.fromhex(value)


def public_key(value: Any, curve: str, prefix: str) -> bytes:
    return parse_hex(value, PUBLIC_KEY_BYTES[curve], "PUBLIC_KEY_INVALID", prefix)


def share(value: Any, prefix: str) -> bytes:
    return parse_hex(value, SHARE_BYTES, "SHARE_INVALID", prefix)


def lookup_text(body: dict, field: str) -> str | None:
    """An identity field of the check routes as the reference's query binds
    it: a string as it is, a number or boolean as its JavaScript text
    (node-postgres binds ``String(value)``), absent/null as None (SQL NULL,
    which finds nothing). An object or array would be bound as JSON or array
    text that no derived identity is; None finds nothing just as well."""
    value = body.get(field)
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool | int | float):
        return js_string(value)
    return None


def wallets_object(body: dict) -> dict:
    """The v2 ``wallets`` member: the reference crashes without it (§13 W1)."""
    wallets = body.get("wallets")
    if not isinstance(wallets, dict):
        raise ApiError("INVALID_REQUEST", "wallets is required")
    return wallets


def curve_entry(wallets: dict, curve: str) -> dict | None:
    """A v2 register/reshare entry ``{public_key, share}``; a falsy value means
    absent (the reference's truthiness test). Any other non-object has no
    ``public_key`` member, as in JavaScript, so it fails the key check with
    the reference's "Input must be a string." """
    entry = wallets.get(curve)
    if not js_truthy(entry):
        return None
    return entry if isinstance(entry, dict) else {}


def supported_curve(body: dict) -> str:
    """v1's ``curve_type`` must name a curve (message renders JS-style)."""
    curve = body.get("curve_type")
    if curve in CURVES:
        return curve
    shown = js_string(curve) if "curve_type" in body else "undefined"
    raise ApiError("CURVE_TYPE_NOT_SUPPORTED", f"Curve type not supported: {shown}")
