"""Discord OAuth2 access tokens (spec §4.6): GET users/@me; an e-mail is
required, the ``verified`` flag is not checked (as the reference)."""

from __future__ import annotations

from typing import Any

import requests

from services.api.auth.base import AuthFailure
from services.api.auth.outbound import Answer
from services.api.auth.userinfo import UserInfoVerifier
from shared.config import Config

ERROR_TEXT_LIMIT = 200


class DiscordVerifier(UserInfoVerifier):
    def __init__(self, config: Config, session: requests.Session):
        super().__init__("Discord", config.discord_userinfo_url, config, session)

    def refusal(self, answer: Answer, token: str) -> str:
        # The reference puts Discord's answer text in the message; keep it
        # short and make sure an echoed token never travels back.
        text = answer.text()
        if token:
            text = text.replace(token, "***")
        text = " ".join(text[:ERROR_TEXT_LIMIT].split())
        return f"Failed to get user info: {answer.status} {text}"

    def user(self, body: dict[str, Any]) -> dict[str, Any]:
        if not body.get("email"):
            raise AuthFailure("Can't get email from Discord token")
        return body
