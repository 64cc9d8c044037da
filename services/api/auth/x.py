"""Placeholder: implemented by the social-login issue."""

from __future__ import annotations

from typing import Any

import requests

from services.api.auth.base import AuthFailure
from shared.config import Config


class XVerifier:
    def __init__(self, config: Config, session: requests.Session):
        self.config = config
        self.session = session

    def verify(self, token: str) -> dict[str, Any]:
        raise AuthFailure("x login is not available yet")
