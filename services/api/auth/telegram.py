"""Placeholder: implemented by the key share API issue (spec §4.7)."""

from __future__ import annotations

from typing import Any

from services.api.auth.base import AuthFailure
from shared.config import Config


class TelegramVerifier:
    def __init__(self, config: Config):
        self.config = config

    def verify(self, token: str) -> dict[str, Any]:
        raise AuthFailure("telegram login is not available yet")
