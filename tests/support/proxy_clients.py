"""HTTPS clients of the test nginx, each from a chosen loopback address
(127.0.0.0/8 is all ours), so nginx sees distinct client addresses and
forwards them in X-Forwarded-For; and timing of a well-behaved client."""

from __future__ import annotations

import time
from pathlib import Path

import requests
from requests.adapters import HTTPAdapter


class SourceAdapter(HTTPAdapter):
    """Connections bound to one source address."""

    def __init__(self, source: str, **kw):
        self.source = source
        super().__init__(**kw)

    def init_poolmanager(self, *args, **kw):
        kw["source_address"] = (self.source, 0)
        super().init_poolmanager(*args, **kw)


def client_from(source: str, cert: Path, pool: int = 10) -> requests.Session:
    """A keep-alive session whose connections come from ``source`` and
    trust the test's self-signed certificate."""
    session = requests.Session()
    # REQUESTS_CA_BUNDLE in the environment would override ``verify``.
    session.trust_env = False
    session.verify = str(cert)
    session.mount("https://", SourceAdapter(source, pool_maxsize=pool))
    return session


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def timed_gets(session: requests.Session, url: str, count: int) -> tuple[list[float], int]:
    """``count`` GETs one after another: their latencies and how many failed."""
    latencies, failed = [], 0
    for _ in range(count):
        started = time.monotonic()
        try:
            ok = session.get(url, timeout=30).status_code == 200
        except requests.RequestException:
            ok = False
        latencies.append(time.monotonic() - started)
        failed += not ok
    return latencies, failed
