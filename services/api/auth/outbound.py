"""Outbound calls to identity providers (JWKS documents, user-info
endpoints): one pooled session, no redirects, a deadline on the whole answer
and a cap on its size, and errors whose messages are safe to send to a client
(never the token, never a stack trace).

``requests``' own timeout bounds each socket operation, not the whole body: a
provider dripping one byte per second would hold an API thread forever. So
connecting and the headers share one urllib3 ``total`` budget, and the body is
read with ``read1`` after setting the socket's timeout to the time left: the
whole call is bounded by the one deadline.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import requests
import urllib3

from services.api.auth.base import AuthFailure
from services.api.server.gate import outside_gate
from shared.errors import RequestFailure

MAX_ANSWER_BYTES = 256 * 1024  # a JWKS or a user object is a few kB


class OutboundError(RequestFailure):
    """The provider could not be asked or did not answer usably."""


@dataclass(frozen=True)
class Answer:
    status: int
    reason: str
    headers: Mapping[str, str]
    body: bytes

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    def json(self) -> Any | None:
        """The parsed body, or None when it is not JSON."""
        try:
            return json.loads(self.body)
        except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError;
            return None  # absurd nesting exhausts the parser

    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")


def bounded_get(
    session: requests.Session,
    url: str,
    *,
    timeout: float,
    headers: Mapping[str, str] | None = None,
    max_bytes: int = MAX_ANSWER_BYTES,
) -> Answer:
    # Other requests of this worker run while we wait for the provider.
    with outside_gate():
        return _bounded_get(session, url, timeout=timeout, headers=headers, max_bytes=max_bytes)


def _bounded_get(
    session: requests.Session,
    url: str,
    *,
    timeout: float,
    headers: Mapping[str, str] | None,
    max_bytes: int,
) -> Answer:
    deadline = time.monotonic() + timeout
    try:
        # ``total`` makes connecting plus waiting for the headers share one
        # budget (a plain number would allow each of them the full timeout).
        response = session.get(
            url,
            headers=dict(headers or {}),
            stream=True,
            allow_redirects=False,
            # requests hands a urllib3 Timeout through as it is (adapters.py);
            # types-requests admits only a number or a pair.
            timeout=urllib3.Timeout(connect=timeout, read=timeout, total=timeout),  # type: ignore[arg-type]
        )
    except requests.Timeout:
        raise OutboundError("did not answer in time") from None
    except requests.RequestException:
        raise OutboundError("connection failed") from None
    try:
        body = _read_body(response, deadline, max_bytes)
    finally:
        response.close()
    return Answer(response.status_code, response.reason or "", response.headers, body)


def _read_body(response: requests.Response, deadline: float, max_bytes: int) -> bytes:
    raw = response.raw
    chunks: list[bytes] = []
    size = 0
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise OutboundError("did not answer in time")
        sock = getattr(getattr(raw, "connection", None), "sock", None)
        if sock is not None:
            sock.settimeout(remaining)
        try:
            chunk = raw.read1(64 * 1024, decode_content=True)
        except (urllib3.exceptions.ReadTimeoutError, TimeoutError):
            raise OutboundError("did not answer in time") from None
        except (urllib3.exceptions.HTTPError, OSError, ValueError):
            raise OutboundError("connection failed") from None
        if not chunk:
            return b"".join(chunks)
        size += len(chunk)
        if size > max_bytes:
            raise OutboundError(f"answer larger than {max_bytes} bytes")
        chunks.append(chunk)


def fetch_user_info(
    session: requests.Session, url: str, token: str, timeout: float, provider: str
) -> Answer:
    """GET a user-info endpoint with the user's access token."""
    try:
        return bounded_get(
            session, url, timeout=timeout, headers={"Authorization": f"Bearer {token}"}
        )
    except OutboundError as exc:
        raise AuthFailure(f"Token validation failed: {provider} user info {exc}") from None
