"""Build one verifier per ``auth_type`` from the configuration.

Every outbound call (Google and Auth0 JWKS, X and Discord user info) goes
through one pooled HTTP session, sized to the API's threads so that each
thread can keep a warm connection; Google and Auth0 each keep their own JWKS
cache. The bearer middleware builds the set lazily on the first
authenticated request of each API worker, i.e. after the pre-fork, so no two
processes ever share a pooled socket.
"""

from __future__ import annotations

from http.cookiejar import DefaultCookiePolicy

import requests
from requests.adapters import HTTPAdapter

from services.api.auth.auth0 import Auth0Verifier
from services.api.auth.base import Verifier
from services.api.auth.discord import DiscordVerifier
from services.api.auth.google import GoogleVerifier
from services.api.auth.telegram import TelegramVerifier
from services.api.auth.x import XVerifier
from shared.config import Config


def http_session(pool_size: int = 32) -> requests.Session:
    """A session that never retries: a retry would double the time a slow
    provider holds an API thread. HTTPS_PROXY and friends are honoured, as
    nodes behind an egress proxy need them to reach the providers."""
    session = requests.Session()
    # Threads of every user share this session: a cookie one user's call
    # receives (X sets some) must never ride along on another user's call.
    session.cookies.set_policy(DefaultCookiePolicy(allowed_domains=[]))
    adapter = HTTPAdapter(pool_connections=4, pool_maxsize=pool_size, max_retries=0)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


def build_verifiers(config: Config, session: requests.Session | None = None) -> dict[str, Verifier]:
    session = session or http_session(max(config.api_threads, 4))
    return {
        "google": GoogleVerifier(config, session),
        "auth0": Auth0Verifier(config, session),
        "x": XVerifier(config, session),
        "discord": DiscordVerifier(config, session),
        "telegram": TelegramVerifier(config),
    }
