"""Discord OAuth2 access tokens (spec §4.6): GET users/@me, e-mail required."""

from __future__ import annotations

from typing import Any

import requests

from services.api.auth.base import AuthFailure
from services.api.auth.userinfo import fetch_user_info
from shared.config import Config


class DiscordVerifier:
    def __init__(self, config: Config, session: requests.Session):
        self.url = config.discord_userinfo_url
        self.timeout = config.auth_http_timeout_seconds
        self.session = session

    def verify(self, token: str) -> dict[str, Any]:
        response, body = fetch_user_info(self.session, self.url, token, self.timeout, "Discord")
        if not 200 <= response.status_code < 300:
            text = response.text[:200].replace(token, "***") if token else response.text[:200]
            raise AuthFailure(f"Failed to get user info: {response.status_code} {text}")
        if not isinstance(body, dict):
            raise AuthFailure("Token validation failed: Discord user info is not a JSON object")
        if not body.get("email"):
            raise AuthFailure("Can't get email from Discord token")
        return body
