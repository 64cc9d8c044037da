"""A JSON Web Key Set fetched over HTTP and cached in memory.

* Keys are kept for ``ttl`` seconds, or for the answer's ``Cache-Control:
  max-age`` when ``honour_cache_control`` (Google publishes how long its keys
  stay valid), clamped to [MIN_TTL, MAX_TTL].
* A token naming an unknown ``kid`` forces one refetch (key rotation), but
  fetches are at most once per ``refetch_interval``, so a flood of forged
  kids cannot become a flood of requests to the provider.
* If a refresh fails while we still hold keys, they are kept for up to
  ``stale_grace`` more seconds (providers overlap old and new keys), so a
  provider outage does not log everybody out; a failure is retried at most
  once per ``refetch_interval`` and answered from memory meanwhile.
* Looking up a known key while the set is fresh takes no lock; only fetches
  are serialised, so one slow fetch holds at most the threads that need it.

Every failure is a ``JwksError`` whose message is safe to show.
"""

from __future__ import annotations

import base64
import logging
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import jwt
import requests

from services.api.auth.base import AuthFailure
from services.api.auth.outbound import Answer, OutboundError, bounded_get
from services.api.server.gate import outside_gate
from shared.errors import RequestFailure

log = logging.getLogger(__name__)

MIN_TTL = 60.0
MAX_TTL = 86400.0
MAX_AGE = re.compile(r"(?:^|[,\s])max-age\s*=\s*(\d+)", re.IGNORECASE)


_BASE64URL = re.compile(r"[A-Za-z0-9_-]*")


def is_canonical_jwt(token: str) -> bool:
    """True when ``token`` is three segments of unpadded base64url, each the
    one spelling of its bytes. PyJWT also accepts padding and non-zero
    trailing bits, so one signed token could be sent in several spellings;
    commit-reveal binds a session to the hash of the token's text, and a
    re-spelled copy would hash differently and pass as a token never
    committed. Providers issue canonical tokens only."""
    segments = token.split(".")
    if len(segments) != 3:
        return False
    for segment in segments:
        if not _BASE64URL.fullmatch(segment) or len(segment) % 4 == 1:
            return False
        raw = base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
        if base64.urlsafe_b64encode(raw).rstrip(b"=") != segment.encode("ascii"):
            return False
    return True


def unverified_header(token: str, malformed: str) -> dict[str, Any]:
    """A token's header, read before its signature is checked (it names the
    key to check it with); AuthFailure(``malformed``) when it is not a JWT
    in its canonical spelling."""
    if not is_canonical_jwt(token):
        raise AuthFailure(malformed)
    try:
        return jwt.get_unverified_header(token)
    except jwt.PyJWTError:
        raise AuthFailure(malformed) from None


class JwksError(RequestFailure):
    """The key set could not be fetched or read."""


@dataclass(frozen=True)
class _KeySet:
    keys: dict[str, jwt.PyJWK] = field(default_factory=dict)
    fetched_at: float = float("-inf")
    expires_at: float = float("-inf")


class JwksCache:
    def __init__(
        self,
        url: str,
        session: requests.Session,
        timeout: float,
        *,
        ttl: float = 300.0,
        honour_cache_control: bool = False,
        refetch_interval: float = 5.0,
        stale_grace: float = 3600.0,
        label: str = "JWKS",
        clock: Callable[[], float] = time.monotonic,
    ):
        self.url = url
        self.session = session
        self.timeout = timeout
        self.ttl = ttl
        self.honour_cache_control = honour_cache_control
        self.refetch_interval = refetch_interval
        self.stale_grace = stale_grace
        self.label = label
        self.clock = clock
        self._set = _KeySet()  # replaced whole, so lock-free readers see one consistent set
        self._lock = threading.Lock()
        self._last_attempt = float("-inf")
        self._last_error: str | None = None
        self.fetch_count = 0

    def key(self, kid: str) -> jwt.PyJWK | None:
        """The key for ``kid``; None when the provider does not have it."""
        current = self._set
        if self.clock() < current.expires_at and kid in current.keys:
            return current.keys[kid]
        # Wait for another thread's fetch outside the worker's gate: that thread
        # needs the gate back to finish, so waiting inside it would deadlock.
        with outside_gate(), self._lock:
            now = self.clock()
            may_fetch = now - self._last_attempt >= self.refetch_interval
            current = self._set
            if now >= current.expires_at and may_fetch:
                self._refresh(now)
                return self._set.keys.get(kid)
            if kid not in current.keys and may_fetch:
                self._refresh(now)  # rotation: the provider may have a new key
            return self._usable(now).keys.get(kid)

    def decode(self, token: str, kid: str, unknown: str, **checks: Any) -> dict[str, Any]:
        """The token's claims, its RS256 signature checked with the key ``kid``
        names; ``checks`` are jwt.decode's (audience, issuer, leeway, options).
        AuthFailure when there is no such key (``unknown``) or the set cannot
        be fetched; jwt's own errors pass through for the provider to word."""
        try:
            key = self.key(kid)
        except JwksError as exc:
            raise AuthFailure(f"Token validation failed: {exc}") from None
        if key is None:
            raise AuthFailure(unknown)
        return jwt.decode(token, key, algorithms=["RS256"], **checks)

    def _usable(self, now: float) -> _KeySet:
        current = self._set
        if now < current.expires_at + self.stale_grace and current.keys:
            return current
        raise JwksError(self._last_error or f"{self.label} keys expired")

    def _refresh(self, now: float) -> None:
        self._last_attempt = now
        self.fetch_count += 1
        try:
            answer = bounded_get(self.session, self.url, timeout=self.timeout)
            keys = self._parse(answer)
        except (OutboundError, JwksError) as exc:
            message = (
                str(exc) if isinstance(exc, JwksError) else f"Failed to fetch {self.label}: {exc}"
            )
            self._last_error = message
            log.warning(
                "jwks refresh failed",
                extra={"event": "auth.jwks_failed", "jwks": self.label, "error": message},
            )
            self._usable(now)  # raises unless the previous keys are still within grace
            return
        self._last_error = None
        ttl = self._ttl_for(answer)
        self._set = _KeySet(keys, now, now + ttl)
        log.debug(
            "jwks refreshed",
            extra={
                "event": "auth.jwks_refreshed",
                "jwks": self.label,
                "keys": len(keys),
                "ttl_seconds": ttl,
            },
        )

    def _ttl_for(self, answer: Answer) -> float:
        if self.honour_cache_control:
            found = MAX_AGE.search(answer.headers.get("Cache-Control", ""))
            if found:
                return min(max(float(found.group(1)), MIN_TTL), MAX_TTL)
        return self.ttl

    def _parse(self, answer: Answer) -> dict[str, jwt.PyJWK]:
        if not answer.ok:
            raise JwksError(f"Failed to fetch {self.label}: {answer.status} {answer.reason}")
        document = answer.json()
        if document is None:
            raise JwksError(f"{self.label} response is not JSON")
        if not isinstance(document, dict) or not document.get("keys"):
            raise JwksError(f"{self.label} response missing keys")
        entries = document["keys"] if isinstance(document["keys"], list) else []
        keys: dict[str, jwt.PyJWK] = {}
        for entry in entries:
            if (
                not isinstance(entry, dict)
                or entry.get("kty") != "RSA"
                or not isinstance(entry.get("kid"), str)
            ):
                continue
            if entry.get("use", "sig") != "sig":
                continue  # an encryption key must never verify a signature
            try:
                keys[entry["kid"]] = jwt.PyJWK.from_dict(entry, algorithm="RS256")
            except (jwt.PyJWTError, ValueError, TypeError, KeyError):
                continue  # one malformed key does not spoil the others
        if not keys:
            raise JwksError(f"{self.label} response has no usable RSA keys")
        return keys
