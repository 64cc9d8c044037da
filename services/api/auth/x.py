"""X (Twitter) OAuth2 access tokens (spec §4.5): GET users/me; the user is
the answer's ``data`` object (the bearer middleware takes its ``id``)."""

from __future__ import annotations

from typing import Any

import requests

from services.api.auth.base import AuthFailure
from services.api.auth.outbound import fetch_user_info
from shared.config import Config


class XVerifier:
    def __init__(self, config: Config, session: requests.Session):
        self.url = config.x_userinfo_url
        self.timeout = config.auth_http_timeout_seconds
        self.session = session

    def verify(self, token: str) -> dict[str, Any]:
        answer = fetch_user_info(self.session, self.url, token, self.timeout, "X")
        if not answer.ok:
            raise AuthFailure("Invalid or malformed token")
        body = answer.json()
        if not isinstance(body, dict):
            raise AuthFailure("Token validation failed: X user info is not a JSON object")
        data = body.get("data")
        if not isinstance(data, dict):
            # The reference threw here (a 500); a missing user is a failed login.
            raise AuthFailure("Token validation failed: X user info has no data")
        return data
