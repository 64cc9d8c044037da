"""A JSON Web Key Set fetched over HTTP and cached in memory.

Keys are kept for ``ttl`` seconds. A token naming an unknown ``kid`` forces
one refetch (key rotation), but at most once per ``refetch_interval`` so a
flood of forged kids cannot turn into a flood of requests to the provider.
Every failure is a ``JwksError`` with a message safe to show.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import jwt
import requests


class JwksError(Exception):
    """The key set could not be fetched or read."""


class JwksCache:
    def __init__(self, url: str, session: requests.Session, timeout: float, *,
                 ttl: float = 300.0, refetch_interval: float = 5.0, label: str = "JWKS",
                 clock: Callable[[], float] = time.monotonic):
        self.url = url
        self.session = session
        self.timeout = timeout
        self.ttl = ttl
        self.refetch_interval = refetch_interval
        self.label = label
        self.clock = clock
        self._keys: dict[str, jwt.PyJWK] = {}
        self._fetched_at: float | None = None
        self._lock = threading.Lock()
        self.fetch_count = 0

    def _fetch(self) -> dict[str, jwt.PyJWK]:
        self.fetch_count += 1
        try:
            response = self.session.get(self.url, timeout=self.timeout)
        except requests.Timeout:
            raise JwksError(f"Failed to fetch {self.label}: timed out") from None
        except requests.RequestException:
            raise JwksError(f"Failed to fetch {self.label}: connection failed") from None
        if not 200 <= response.status_code < 300:
            raise JwksError(f"Failed to fetch {self.label}: {response.status_code} {response.reason}")
        try:
            document = response.json()
        except ValueError:
            raise JwksError(f"{self.label} response is not JSON") from None
        if not isinstance(document, dict) or not document.get("keys"):
            raise JwksError(f"{self.label} response missing keys")
        keys: dict[str, jwt.PyJWK] = {}
        for entry in document["keys"] if isinstance(document["keys"], list) else []:
            if not isinstance(entry, dict) or entry.get("kty") != "RSA" or "kid" not in entry:
                continue
            try:
                keys[str(entry["kid"])] = jwt.PyJWK.from_dict(entry, algorithm="RS256")
            except (jwt.PyJWTError, ValueError, TypeError, KeyError):
                continue  # one malformed key does not spoil the others
        if not keys:
            raise JwksError(f"{self.label} response has no usable RSA keys")
        return keys

    def key(self, kid: str) -> jwt.PyJWK | None:
        """The key for ``kid``; None when the provider does not have it."""
        with self._lock:
            now = self.clock()
            fresh = self._fetched_at is not None and now - self._fetched_at < self.ttl
            if not fresh:
                self._keys = self._fetch()
                self._fetched_at = now
                return self._keys.get(kid)
            found = self._keys.get(kid)
            if found is None and now - self._fetched_at >= self.refetch_interval:
                self._keys = self._fetch()
                self._fetched_at = now
                found = self._keys.get(kid)
            return found
