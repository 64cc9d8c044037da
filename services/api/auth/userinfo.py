"""Calling an OAuth provider's user-info endpoint with the user's access
token: one pooled session, a short timeout, never the token in a message."""

from __future__ import annotations

from typing import Any

import requests

from services.api.auth.base import AuthFailure


def fetch_user_info(session: requests.Session, url: str, token: str, timeout: float,
                    provider: str) -> tuple[requests.Response, Any]:
    """(response, parsed JSON or None when the body is not JSON)."""
    try:
        response = session.get(url, headers={"Authorization": f"Bearer {token}"}, timeout=timeout)
    except requests.Timeout:
        raise AuthFailure(f"Token validation failed: {provider} did not answer in time") from None
    except requests.RequestException:
        raise AuthFailure(f"Token validation failed: cannot reach {provider}") from None
    try:
        body = response.json()
    except ValueError:
        body = None
    return response, body
