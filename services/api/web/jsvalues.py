"""JavaScript's string conversions, where the reference's output depends on
them (template literals in messages, Telegram's data-check-string, ids)."""

from __future__ import annotations

import math
import re
from decimal import Decimal
from typing import Any

_PARSE_INT = re.compile(r"^\s*([+-]?\d+)")


def js_number(value: float) -> str:
    """Number.prototype.toString (ECMAScript Number::toString, radix 10).

    The digits are the shortest that read back as the same double (Python's
    repr finds the same ones); JavaScript then writes them in plain decimal
    from 1e-7 up to below 1e21 (``123456789012345680000``, ``0.000001``),
    else as ``d.ddde±n``."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    if value == 0:
        return "0"  # -0 too
    if value < 0:
        return "-" + js_number(-value)
    _, digit_tuple, exponent = Decimal(repr(value)).as_tuple()
    digits = "".join(map(str, digit_tuple)).rstrip("0")
    assert isinstance(exponent, int)  # finite: not "n", "N" or "F"
    k = len(digits)
    # value = 0.<digits> x 10^n
    n = len(digit_tuple) + exponent
    if k <= n <= 21:
        return digits + "0" * (n - k)
    if 0 < n <= 21:
        return f"{digits[:n]}.{digits[n:]}"
    if -6 < n <= 0:
        return "0." + "0" * -n + digits
    sign = "+" if n - 1 >= 0 else "-"
    mantissa = digits if k == 1 else f"{digits[0]}.{digits[1:]}"
    return f"{mantissa}e{sign}{abs(n - 1)}"


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
