"""Telegram login-widget payload as the bearer credential (spec §4.7)."""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import time
from collections.abc import Callable
from typing import Any

from services.api.auth.base import AuthFailure
from services.api.web.jsvalues import js_parse_int, js_string, js_truthy, js_utf8
from shared.config import Config

MAX_AGE_SECONDS = 86400
_HEX_PREFIX = re.compile(r"[0-9a-fA-F]*")


def data_check_string(payload: dict[str, Any]) -> str:
    """Every key but ``hash``, sorted by UTF-16 code units, empty/null values
    dropped, ``key=value`` joined by newlines (values stringified the JS way)."""
    keys = sorted((k for k in payload if k != "hash"), key=lambda k: k.encode("utf-16-be"))
    lines = [
        f"{key}={js_string(payload[key])}"
        for key in keys
        if payload[key] is not None and payload[key] != ""
    ]
    return "\n".join(lines)


def lenient_hex(text: str) -> bytes:
    """Node's Buffer.from(text, "hex"): stops at the first invalid pair."""
    match = _HEX_PREFIX.match(text)  # always matches (``*``): None only to the type checker
    valid = match.group(0) if match else ""
    return bytes.fromhex(valid[: len(valid) // 2 * 2])


# Domain tag of ``credential``: its digest is never equal to any other hash
# the node keeps (token hashes are SHA-256 of auth_type ‖ token text).
CREDENTIAL_TAG = b"ksnode telegram login credential v1\x00"


def credential(token: str) -> bytes | None:
    """SHA-256 of a tag and the 32 bytes the payload's ``hash`` decodes to:
    the same for every spelling of one signed login that verifies (key
    order, whitespace, escapes, empty extra keys, numbers for strings, hex
    case), since the HMAC alone fixes the data it signs. None when the token
    could not verify (not JSON, no 32-byte hash). The token is not checked
    here: callers use the digest only for a token that is, or is refused."""
    try:
        payload = json.loads(token)
    except (ValueError, RecursionError):
        return None
    if not isinstance(payload, dict) or not js_truthy(payload.get("hash")):
        return None
    return _payload_credential(payload)


def _payload_credential(payload: dict[str, Any]) -> bytes | None:
    received = lenient_hex(js_string(payload["hash"]))  # decoded as the check does
    if len(received) != 32:
        return None
    return hashlib.sha256(CREDENTIAL_TAG + received).digest()


def expected_hash(bot_token: str, payload: dict[str, Any]) -> bytes:
    secret = hashlib.sha256(bot_token.encode("utf-8")).digest()
    # Node's UTF-8: an unpaired surrogate (from a JSON escape) hashes as U+FFFD.
    return hmac.new(secret, js_utf8(data_check_string(payload)), hashlib.sha256).digest()


# Verified payloads kept per worker: a wallet's sign-in sends the same one
# with several requests, and its check (JSON, sorting, HMAC) is the largest
# part of a Telegram request's own work. The entry is the exact token text,
# so only that payload hits it, and the age rule is applied again on every hit.
CACHE_SIZE = 1024


class TelegramVerifier:
    def __init__(self, config: Config, clock: Callable[[], float] = time.time):
        self.bot_token = str(config.telegram_bot_token)
        self.clock = clock
        # token text -> (claims, auth_date, credential)
        self._verified: dict[str, tuple[dict[str, Any], int, bytes | None]] = {}

    def verify_payload(self, payload: Any) -> dict[str, Any]:
        return self._checked(payload)[0]

    def _checked(self, payload: Any) -> tuple[dict[str, Any], int]:
        """The payload, checked, and its auth_date."""
        if not isinstance(payload, dict) or not all(
            js_truthy(payload.get(field)) for field in ("id", "auth_date", "hash")
        ):
            raise AuthFailure("Missing required fields: id, auth_date, hash")
        received = lenient_hex(js_string(payload["hash"]))
        if len(received) != 32:
            raise AuthFailure("Invalid hash length")
        if not self.bot_token or not hmac.compare_digest(
            received, expected_hash(self.bot_token, payload)
        ):
            raise AuthFailure("Hash verification failed")
        auth_date = js_parse_int(payload["auth_date"])
        if auth_date is None:
            raise AuthFailure("Invalid auth_date format")
        if not self._fresh(auth_date):
            raise AuthFailure("Auth date is too old or invalid")
        return payload, auth_date

    def _fresh(self, auth_date: int) -> bool:
        return 0 <= int(self.clock()) - auth_date <= MAX_AGE_SECONDS

    def verify(self, token: str) -> dict[str, Any]:
        known = self._verified.get(token)
        if known is not None:
            claims, auth_date, _ = known
            if self._fresh(auth_date):
                return dict(claims)  # a copy: callers may not change the cached one
            self._verified.pop(token, None)  # another thread may have dropped it
        try:
            payload = json.loads(token)
        except ValueError:
            raise AuthFailure("Invalid token format: Expected JSON string") from None
        claims, auth_date = self._checked(payload)
        if len(self._verified) >= CACHE_SIZE:
            self._verified.pop(next(iter(self._verified)), None)  # the oldest entry
        self._verified[token] = (dict(claims), auth_date, _payload_credential(payload))
        return claims

    def credential(self, token: str) -> bytes | None:
        """``credential(token)``, from the cache when this token was verified
        here (a request's own, just authenticated): no second JSON parse."""
        known = self._verified.get(token)
        return known[2] if known is not None else credential(token)
