"""JavaScript's string conversions, where the reference's output depends on
them (template literals in messages, Telegram's data-check-string, ids)."""

from __future__ import annotations

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
        return str(value) if abs(value) < 2**53 else _js_big_int(value)
    if isinstance(value, float):
        return js_number(value)
    if isinstance(value, list):
        return _js_join(value)
    if isinstance(value, dict):
        return "[object Object]"
    return str(value)


def _js_join(array: list) -> str:
    """Array.prototype.join(","), nested arrays joined in place (null as
    ""). A loop, not recursion: a client's array nested ~1,000 deep (the
    JSON parser's limit) would otherwise exhaust Python's stack."""
    out: list[str] = []
    levels = [iter(array)]
    first = [True]
    while levels:
        item = next(levels[-1], _END)
        if item is _END:
            levels.pop()
            first.pop()
            continue
        if not first[-1]:
            out.append(",")
        first[-1] = False
        if isinstance(item, list):
            levels.append(iter(item))
            first.append(True)
        elif item is not None:
            out.append(js_string(item))
    return "".join(out)


_END = object()


def _js_big_int(value: int) -> str:
    """A JSON integer too big for an exact double, as JavaScript prints the
    double it parsed (``1e+300``, ``Infinity``)."""
    try:
        return js_number(float(value))
    except OverflowError:
        return "Infinity" if value > 0 else "-Infinity"


def js_parse_int(value: Any) -> int | None:
    """parseInt(String(value), 10); None for NaN."""
    match = _PARSE_INT.match(js_string(value))
    return int(match.group(1)) if match else None


def js_length(text: str) -> int:
    """String.prototype.length: UTF-16 code units (an unpaired surrogate, which
    a ``\\ud800`` JSON escape yields, counts as one, as in JavaScript)."""
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def js_utf8(text: str) -> bytes:
    """Node's UTF-8 encoding of a string: an unpaired surrogate becomes U+FFFD
    (Python would refuse to encode it)."""
    return _LONE_SURROGATE.sub("\ufffd", text).encode("utf-8")


def escape_lone_surrogates(json_text: str) -> str:
    """JSON.stringify's output for unpaired surrogates: a ``\\udXXX`` escape,
    so the text always encodes as UTF-8. Only valid on JSON text, where a
    surrogate can only sit inside a string literal."""
    if json_text.isascii():
        return json_text
    return _LONE_SURROGATE.sub(lambda m: f"\\u{ord(m.group()):04x}", json_text)


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
