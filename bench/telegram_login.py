"""Telegram login payloads signed like Telegram does (spec §4.7), for the
benchmark's Authorization headers."""

from __future__ import annotations

import hashlib
import hmac
import json
import time


def bearer_header(user_id: str, bot_token: str) -> str:
    payload = {"id": user_id, "first_name": "Bench", "auth_date": str(int(time.time()))}
    check = "\n".join(f"{k}={payload[k]}" for k in sorted(payload))
    secret = hashlib.sha256(bot_token.encode()).digest()
    payload["hash"] = hmac.new(secret, check.encode(), hashlib.sha256).hexdigest()
    return "Bearer " + json.dumps(payload, separators=(",", ":"))
