"""JavaScript's string conversions, where the reference's output depends on
them (template literals in messages, Telegram's data-check-string, ids)."""

from __future__ import annotations

import json
import math
import re
from typing import Any

_PARSE_INT = re.compile(r"^\s*([+-]?\d+)")


def js_number(value: float) -> str:
    """Number.prototype.toString for finite numbers (the common cases)."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    if value == int(value) and abs(value) < 1e21:
        return str(int(value))
    text = repr(value)
    if "e" in text:
        mantissa, exponent = text.split("e")
        sign = "-" if exponent.startswith("-") else "+"
        text = f"{mantissa}e{sign}{exponent.lstrip('+-').lstrip('0') or '0'}"
    return text


def js_string(value: Any) -> str:
    """String(value) / `${value}` in JavaScript, for JSON-decoded values."""
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, str):
        return value
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return js_number(value)
    if isinstance(value, list):
        return ",".join("" if item is None else js_string(item) for item in value)
    if isinstance(value, dict):
        return "[object Object]"
    return str(value)


def js_parse_int(value: Any) -> int | None:
    """parseInt(String(value), 10); None for NaN."""
    match = _PARSE_INT.match(js_string(value))
    return int(match.group(1)) if match else None


def js_length(text: str) -> int:
    """String.prototype.length: UTF-16 code units."""
    return len(text.encode("utf-16-le")) // 2


def json_text(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def js_truthy(value: Any) -> bool:
    """JavaScript truthiness of a JSON-decoded value ({} and [] are truthy)."""
    if value is None or value is False:
        return False
    if isinstance(value, bool):
        return True
    if isinstance(value, int | float):
        return value != 0 and not (isinstance(value, float) and math.isnan(value))
    if isinstance(value, str):
        return value != ""
    return True
