"""How a failing telemetry target shows in the log: one error line when it
starts failing, then a summary at most every 15 minutes with the count, and
one line when it recovers. A target down for days (e.g. env.example's
placeholder OKO_API_BASE_URL) would otherwise write a line every report;
/health and /metrics still show every result (the heartbeat records it)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from shared.infra.logthrottle import LogThrottle

SUMMARY_SECONDS = 900.0
KEY = "telemetry.failing"


class FailureLog:
    def __init__(
        self,
        log: logging.Logger,
        *,
        summary_seconds: float = SUMMARY_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.log = log
        self.summary_seconds = summary_seconds
        self.clock = clock
        self.failures = 0  # in the current run of failures
        self.started = 0.0
        self._throttle = LogThrottle(summary_seconds, clock)

    def failed(self, message: str, extra: dict) -> None:
        self.failures += 1
        if self.failures == 1:
            # A new run of failures: its first line at once.
            self.started = self.clock()
            self._throttle = LogThrottle(self.summary_seconds, self.clock)
        left_out = self._throttle.allow(KEY)
        if left_out is None:
            return
        if self.failures == 1:
            self.log.error(message, extra=extra)
            return
        self.log.error(
            f"telemetry still failing: {self.failures} failed reports in "
            f"{round(self.clock() - self.started)} s ({message})",
            extra={
                **extra,
                "event": "telemetry.still_failing",
                "failures": self.failures,
                "since_last_line": left_out + 1,
            },
        )

    def succeeded(self, message: str, extra: dict) -> None:
        if self.failures:
            self.log.info(
                f"telemetry recovered after {self.failures} failed reports",
                extra={
                    "event": "telemetry.recovered",
                    "failures": self.failures,
                    "seconds": round(self.clock() - self.started),
                },
            )
            self.failures = 0
        self.log.info(message, extra=extra)
