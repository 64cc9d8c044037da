"""Providers whose access token is checked by asking their user-info
endpoint with it (X, Discord): the call, the refusal of an answer that is
not a JSON object, and the hooks where the providers differ (what a refused
token's message says, which part of the answer is the user)."""

from __future__ import annotations

from typing import Any

import requests

from services.api.auth.base import AuthFailure
from services.api.auth.outbound import Answer, fetch_user_info
from shared.config import Config


class UserInfoVerifier:
    def __init__(self, provider: str, url: str, config: Config, session: requests.Session):
        self.provider = provider  # as it appears in messages
        self.url = url
        self.timeout = config.auth_http_timeout_seconds
        self.session = session

    def refusal(self, answer: Answer, token: str) -> str:
        """The 401 message when the provider did not accept the token."""
        raise NotImplementedError

    def user(self, body: dict[str, Any]) -> dict[str, Any]:
        """The user object in the provider's answer, or AuthFailure."""
        raise NotImplementedError

    def verify(self, token: str) -> dict[str, Any]:
        answer = fetch_user_info(self.session, self.url, token, self.timeout, self.provider)
        if not answer.ok:
            raise AuthFailure(self.refusal(answer, token))
        body = answer.json()
        if not isinstance(body, dict):
            raise AuthFailure(
                f"Token validation failed: {self.provider} user info is not a JSON object"
            )
        return self.user(body)
