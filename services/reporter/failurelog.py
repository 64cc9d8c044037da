"""How a failing telemetry target shows in the log: one error line when it
starts failing, then a summary at most every 15 minutes with the count, and
one line when it recovers. A target down for days (e.g. env.example's
placeholder OKO_API_BASE_URL) would otherwise write a line every report;
/health and /metrics still show every result (the heartbeat records it)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

SUMMARY_SECONDS = 900.0


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
        self.last_line = 0.0
        self.since_line = 0

    def failed(self, message: str, extra: dict) -> None:
        now = self.clock()
        self.failures += 1
        if self.failures == 1:
            self.started = self.last_line = now
            self.since_line = 0
            self.log.error(message, extra=extra)
            return
        self.since_line += 1
        if now - self.last_line < self.summary_seconds:
            return
        self.log.error(
            f"telemetry still failing: {self.failures} failed reports in "
            f"{round(now - self.started)} s ({message})",
            extra={
                **extra,
                "event": "telemetry.still_failing",
                "failures": self.failures,
                "since_last_line": self.since_line,
            },
        )
        self.last_line = now
        self.since_line = 0

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
