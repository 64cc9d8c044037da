"""Signed Telegram login payloads for tests (spec §4.7)."""

from __future__ import annotations

import json
import time

from services.api.auth.telegram import expected_hash

BOT_TOKEN = "123456:TEST-bot-token"


def login_payload(
    user_id: str = "987654321",
    *,
    bot_token: str = BOT_TOKEN,
    auth_date: int | None = None,
    **extra: str,
) -> dict:
    payload = {
        "id": user_id,
        "first_name": "Alice",
        "username": "alice",
        "auth_date": str(int(time.time()) if auth_date is None else auth_date),
        **extra,
    }
    payload["hash"] = expected_hash(bot_token, payload).hex()
    return payload


def bearer(user_id: str = "987654321", **kw) -> dict[str, str]:
    """Headers of an authenticated wallet call as Telegram user ``user_id``."""
    return {
        "Authorization": "Bearer " + json.dumps(login_payload(user_id, **kw), separators=(",", ":"))
    }
