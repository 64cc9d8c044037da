"""Build one verifier per ``auth_type`` from the configuration.

X and Discord share one pooled HTTP session; Google and Auth0 each keep
their own JWKS cache. Built once per process by create_app.
"""

from __future__ import annotations

import requests
from requests.adapters import HTTPAdapter

from services.api.auth.base import Verifier
from shared.config import Config


def http_session(pool_size: int = 32) -> requests.Session:
    session = requests.Session()
    adapter = HTTPAdapter(pool_connections=4, pool_maxsize=pool_size, max_retries=0)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


def build_verifiers(config: Config, session: requests.Session | None = None) -> dict[str, Verifier]:
    from services.api.auth.auth0 import Auth0Verifier
    from services.api.auth.discord import DiscordVerifier
    from services.api.auth.google import GoogleVerifier
    from services.api.auth.telegram import TelegramVerifier
    from services.api.auth.x import XVerifier

    session = session or http_session(max(config.api_threads, 4))
    return {
        "google": GoogleVerifier(config, session),
        "auth0": Auth0Verifier(config, session),
        "x": XVerifier(config, session),
        "discord": DiscordVerifier(config, session),
        "telegram": TelegramVerifier(config),
    }
