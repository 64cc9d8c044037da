"""X (Twitter) OAuth2 access tokens (spec §4.5): GET users/me; the user is
the answer's ``data`` object (the bearer middleware takes its ``id``)."""

from __future__ import annotations

from typing import Any

import requests

from services.api.auth.base import AuthFailure
from services.api.auth.outbound import Answer
from services.api.auth.userinfo import UserInfoVerifier
from shared.config import Config


class XVerifier(UserInfoVerifier):
    def __init__(self, config: Config, session: requests.Session):
        super().__init__("X", config.x_userinfo_url, config, session)

    def refusal(self, answer: Answer, token: str) -> str:
        return "Invalid or malformed token"

    def user(self, body: dict[str, Any]) -> dict[str, Any]:
        data = body.get("data")
        if not isinstance(data, dict):
            # The reference threw here (a 500); a missing user is a failed login.
            raise AuthFailure("Token validation failed: X user info has no data")
        return data
