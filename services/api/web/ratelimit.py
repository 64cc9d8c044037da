"""Per-client fixed-window rate limiting (spec §2.5).

A window starts at a client's first hit and lasts ``window`` seconds; every
request counts, rejected ones included. Headers follow draft-6 "standard
headers": ``RateLimit-Policy``, ``-Limit``, ``-Remaining``, ``-Reset``.
The client key is the TCP peer, or — behind ``TRUST_PROXY_HOPS`` trusted
proxies — the address that many hops from the right of ``X-Forwarded-For``.
IPv6 clients are bucketed by /56 like the reference.
"""

from __future__ import annotations

import functools
import ipaddress
import math
import threading
import time
from dataclasses import dataclass

from flask import Request

from shared.config import Config


@dataclass
class Decision:
    allowed: bool
    headers: dict[str, str]
    window: int


def decide(limit: int, window: int, start: float, count: int, now: float) -> Decision:
    """The verdict and draft-6 headers for the ``count``-th hit of a window."""
    # min: a window another worker opened just after this one read its clock
    reset = min(window, max(0, math.ceil(start + window - now)))
    headers = {
        "RateLimit-Policy": f"{limit};w={window}",
        "RateLimit-Limit": str(limit),
        "RateLimit-Remaining": str(max(limit - count, 0)),
        "RateLimit-Reset": str(reset),
    }
    allowed = count <= limit
    if not allowed:
        headers["Retry-After"] = str(reset)
    return Decision(allowed, headers, window)


class FixedWindowLimiter:
    def __init__(self, limit: int, window: int = 60, *, clock=time.monotonic):
        self.limit = limit
        self.window = window
        self._clock = clock
        self._hits: dict[str, tuple[float, int]] = {}
        self._lock = threading.Lock()
        self._last_sweep = clock()

    def hit(self, key: str) -> Decision:
        now = self._clock()
        with self._lock:
            start, count = self._hits.get(key, (now, 0))
            if now - start >= self.window:
                start, count = now, 0
            count += 1
            self._hits[key] = (start, count)
            if now - self._last_sweep > self.window:
                self._sweep(now)
        return decide(self.limit, self.window, start, count, now)

    def _sweep(self, now: float) -> None:
        expired = [k for k, (start, _) in self._hits.items() if now - start >= self.window]
        for key in expired:
            del self._hits[key]
        self._last_sweep = now


@functools.lru_cache(maxsize=1024)
def is_trusted_proxy(remote_addr: str, trusted: tuple[str, ...]) -> bool:
    """Whether the socket's peer is one of TRUSTED_PROXIES (cached: behind a
    proxy the same few peers ask again and again)."""
    try:
        ip = ipaddress.ip_address(remote_addr)
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return any(ip in ipaddress.ip_network(network) for network in trusted)


def forwarded_address(
    remote_addr: str | None, forwarded: str | None, hops: int, trusted: tuple[str, ...]
) -> str:
    """The client's address as TRUST_PROXY_HOPS proxies report it, unparsed:
    the socket's peer with no trusted hop or when the peer is not one of the
    ``trusted`` proxies (the port reached directly: its header is the
    client's own writing), else the entry ``hops`` from the right of
    X-Forwarded-For (the rightmost entry is our peer, the nearest proxy; each
    trusted hop vouches for the entry to its left)."""
    address = remote_addr or "unknown"
    if hops <= 0 or not is_trusted_proxy(address, trusted):
        return address
    chain = [part.strip() for part in (forwarded or "").split(",") if part.strip()]
    chain.append(address)
    return chain[max(len(chain) - 1 - hops, 0)]


def client_key(request: Request, config: Config) -> str:
    address = forwarded_address(
        request.remote_addr,
        request.headers.get("X-Forwarded-For"),
        config.trust_proxy_hops,
        config.trusted_proxies,
    )
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.ip_network(f"{ip}/56", strict=False))
    return str(ip)


def rate_limit_message(window: int) -> str:
    return f"Too many requests, please try again after {window} seconds"


# Per-route admin limits (spec §2.5 / §5.12), on top of the global one.
ADMIN_LIMITS = {"backup": 5, "restore": 3, "history": 5}


def build_limiters(global_limit: int, factory) -> dict[str, object]:
    """Every limiter the app uses, made by ``factory(limit, window)`` (local
    or shared across worker processes)."""
    limiters = {"global": factory(global_limit, 60)}
    for name, limit in ADMIN_LIMITS.items():
        limiters[name] = factory(limit, 60)
    return limiters
