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


def token_text(payload: dict) -> str:
    """The bearer token as the real client writes it: the payload's JSON."""
    return json.dumps(payload, separators=(",", ":"))


def respellings(payload: dict) -> dict[str, str]:
    """Other texts of one signed login, each verifying as that login does
    (the HMAC covers only the sorted, non-empty ``key=value`` lines): what a
    co-node operator who saw the token can send instead of it."""
    return {
        "reordered": token_text(dict(reversed(list(payload.items())))),
        "whitespace": json.dumps(payload, separators=(", ", ": ")),
        "escaped": token_text(payload).replace('"id"', '"\\u0069d"', 1),
        "empty_extra_key": token_text({**payload, "x": ""}),
        "numbers": token_text(
            {**payload, "id": int(payload["id"]), "auth_date": int(payload["auth_date"])}
        ),
        "upper_case_hash": token_text({**payload, "hash": payload["hash"].upper()}),
    }


def bearer(user_id: str = "987654321", **kw) -> dict[str, str]:
    """Headers of an authenticated wallet call as Telegram user ``user_id``."""
    return {"Authorization": "Bearer " + token_text(login_payload(user_id, **kw))}
