"""Discord OAuth2 access tokens (spec §4.6): GET users/@me; an e-mail is
required, the ``verified`` flag is not checked (as the reference)."""

from __future__ import annotations

from typing import Any

import requests

from services.api.auth.base import AuthFailure
from services.api.auth.outbound import fetch_user_info
from shared.config import Config

ERROR_TEXT_LIMIT = 200


class DiscordVerifier:
    def __init__(self, config: Config, session: requests.Session):
        self.url = config.discord_userinfo_url
        self.timeout = config.auth_http_timeout_seconds
        self.session = session

    def verify(self, token: str) -> dict[str, Any]:
        answer = fetch_user_info(self.session, self.url, token, self.timeout, "Discord")
        if not answer.ok:
            # The reference puts Discord's answer text in the message; keep
            # it short and make sure an echoed token never travels back.
            text = answer.text()
            if token:
                text = text.replace(token, "***")
            text = " ".join(text[:ERROR_TEXT_LIMIT].split())
            raise AuthFailure(f"Failed to get user info: {answer.status} {text}")
        body = answer.json()
        if not isinstance(body, dict):
            raise AuthFailure("Token validation failed: Discord user info is not a JSON object")
        if not body.get("email"):
            raise AuthFailure("Can't get email from Discord token")
        return body
