"""JSON request bodies, parsed the way the reference's express.json() does
(spec §2.4) but answering mistakes with the JSON envelope instead of HTML.

* Only ``application/json`` bodies are parsed; any other content type reads
  as ``{}`` (so every field is missing). A leading UTF-8 byte order mark is
  skipped.
* A top-level array is accepted and reads as ``{}`` (no fields).
* Malformed JSON, a top-level scalar, invalid UTF-8 or a charset other than
  UTF-8 are 400 INVALID_REQUEST; more than 100 kB is 413 (Flask's
  MAX_CONTENT_LENGTH).
"""

from __future__ import annotations

import json
from typing import Any

from flask import g, request

from services.api.web.errors import ApiError

MAX_BODY_BYTES = 100 * 1024
UTF8_BOM = b"\xef\xbb\xbf"


def _reject_constant(name: str) -> Any:
    raise ValueError(f"invalid JSON constant {name}")


def _parse_int(digits: str) -> int | float:
    """An integer literal; past Python's 4,300-digit conversion limit it is a
    float (Infinity), as JSON.parse reads every number, not a parse error."""
    return int(digits) if len(digits) <= 4000 else float(digits)


# One decoder for every request: json.loads with these hooks would build a
# decoder and its scanner per call (1.6 µs more per request).
_DECODER = json.JSONDecoder(parse_constant=_reject_constant, parse_int=_parse_int)


def json_body() -> dict[str, Any]:
    """The request's JSON object (cached per request)."""
    cached = g.get("_json_body")
    if cached is not None:
        return cached
    body: dict[str, Any] = {}
    if request.mimetype == "application/json":
        charset = request.mimetype_params.get("charset", "utf-8").lower()
        if charset not in ("utf-8", "utf8"):
            raise ApiError("UNSUPPORTED_MEDIA_TYPE", f'Unsupported charset "{charset.upper()}"')
        raw = request.get_data(cache=True)
        # The reference's decoder (iconv-lite) drops a leading byte order
        # mark; a body of only the mark is then empty.
        raw = raw.removeprefix(UTF8_BOM)
        # Only a body of no bytes at all is empty: one of only whitespace
        # fails the reference's strict parser (its first character is not
        # "{" or "["), so it is malformed here too.
        if raw:
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError:
                raise ApiError("INVALID_REQUEST", "Request body is not valid UTF-8") from None
            try:
                parsed = _DECODER.decode(text)
            except (ValueError, RecursionError):
                raise ApiError("INVALID_REQUEST", "Malformed JSON in request body") from None
            if isinstance(parsed, dict):
                body = parsed
            elif isinstance(parsed, list):
                body = {}
            else:
                raise ApiError("INVALID_REQUEST", "Request body must be a JSON object")
    g._json_body = body
    return body
