"""X (Twitter) OAuth2 access tokens (spec §4.5): GET users/me."""

from __future__ import annotations

from typing import Any

import requests

from services.api.auth.base import AuthFailure
from services.api.auth.userinfo import fetch_user_info
from shared.config import Config


class XVerifier:
    def __init__(self, config: Config, session: requests.Session):
        self.url = config.x_userinfo_url
        self.timeout = config.auth_http_timeout_seconds
        self.session = session

    def verify(self, token: str) -> dict[str, Any]:
        response, body = fetch_user_info(self.session, self.url, token, self.timeout, "X")
        if not 200 <= response.status_code < 300:
            raise AuthFailure("Invalid or malformed token")
        data = body.get("data") if isinstance(body, dict) else None
        if not isinstance(data, dict):
            raise AuthFailure("Token validation failed: X user info has no data")
        return data
