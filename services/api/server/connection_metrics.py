"""What the server's connection limits (limits.py) tell the operator:
Prometheus counters of what they refused or closed, and the rate-limited
log line naming the addresses whose connections were refused.

The counters are made by the app's metrics setup (routes/metrics.py), in
its registry, so that a single worker's /metrics shows them; with several
workers prometheus_client's multiprocess mode sums them over all workers.
Every series the limits can produce exists from the start, at 0, so an
alert's ``increase()`` sees the first event.
"""

from __future__ import annotations

import logging
import time
from collections import Counter as Tally

from prometheus_client import CollectorRegistry, Counter

from services.api.web.errors import STATUS_BY_CODE

log = logging.getLogger("api")

TIMEOUT_REASONS = ("header", "request", "idle")
# The answers the server gives before the application (http_errors.py).
SERVER_ANSWERS = tuple(
    (STATUS_BY_CODE[code], code)
    for code in (
        "INVALID_REQUEST",
        "REQUEST_TIMEOUT",
        "PAYLOAD_TOO_LARGE",
        "HEADERS_TOO_LARGE",
        "NOT_IMPLEMENTED",
        "UNKNOWN_ERROR",
    )
)
REFUSAL_LOG_SECONDS = 10.0
REFUSAL_LOG_TOP = 5  # addresses named per line
# Distinct addresses remembered between two lines: a flood from many
# addresses must not grow memory; the rest are counted under "other".
REFUSAL_LOG_ADDRESSES = 1000


class ConnectionMetrics:
    def __init__(self, registry: CollectorRegistry):
        self.refused = Counter(
            "ksnode_connections_refused",
            "new connections reset because their client address already held"
            " API_MAX_CONNECTIONS_PER_CLIENT",
            registry=registry,
        )
        self.timed_out = Counter(
            "ksnode_connections_timed_out",
            "connections closed by a timeout: header (head not complete in"
            " API_HEADER_TIMEOUT_SECONDS, 408), request (body not complete in twice"
            " that, 408), idle (no request for API_IDLE_TIMEOUT_SECONDS)",
            ["reason"],
            registry=registry,
        )
        self.server_answers = Counter(
            "ksnode_http_rejected_requests",
            "requests the HTTP server answered with an error itself, before the"
            " application saw them (malformed, too large, too slow)",
            ["status", "code"],
            registry=registry,
        )
        for reason in TIMEOUT_REASONS:
            self.timed_out.labels(reason)
        for status, code in SERVER_ANSWERS:
            self.server_answers.labels(str(status), code)

    def server_answer(self, status: int, code: str) -> None:
        self.server_answers.labels(str(status), code).inc()


class RefusalLog:
    """Counts refused connections per client address and logs them at most
    every ``REFUSAL_LOG_SECONDS``: a flood must not flood the log, yet each
    line says how many were refused since the previous one and by whom."""

    def __init__(self, limit: int, interval: float = REFUSAL_LOG_SECONDS):
        self.limit = limit
        self.interval = interval
        self._counts: Tally[str] = Tally()
        self._logged = float("-inf")

    def note(self, client: str) -> None:
        if client in self._counts or len(self._counts) < REFUSAL_LOG_ADDRESSES:
            self._counts[client] += 1
        else:
            self._counts["other"] += 1
        self.flush()

    def flush(self) -> None:
        """Log what was refused since the last line, if there is anything
        and the interval has passed (also called once a second by the
        server, so the last refusals of a burst are not left unsaid)."""
        now = time.monotonic()
        if not self._counts or now - self._logged < self.interval:
            return
        top = self._counts.most_common(REFUSAL_LOG_TOP)
        log.warning(
            "connections refused: client address holds the most allowed",
            extra={
                "event": "api.connections_refused",
                "client": top[0][0],
                "refused": sum(self._counts.values()),
                "clients": dict(top),
                "addresses": len(self._counts),
                "since_seconds": None
                if self._logged == float("-inf")
                else round(now - self._logged, 1),
                "limit": self.limit,
            },
        )
        self._counts.clear()
        self._logged = now
