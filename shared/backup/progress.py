"""Progress of long work (dump, restore, drill): a line on a terminal, and a
log line at most every 10 s for the log reader."""

from __future__ import annotations

import logging
import sys
import time
from typing import TextIO

from shared.infra.sizes import human_size

LOG_EVERY_SECONDS = 10.0


def describe(phase: str, done: int, total: int | None, elapsed: float) -> str:
    if total:
        share = min(done / total, 1.0)
        bar = "#" * int(share * 24)
        return f"{phase}: [{bar:<24}] {share:4.0%} {human_size(done)} of {human_size(total)}, {elapsed:.0f} s"
    rate = done / elapsed if elapsed > 0 else 0
    return f"{phase}: {human_size(done)} written, {elapsed:.0f} s ({human_size(rate)}/s)"


class LogProgress:
    """Logs ``progress`` events, at most one per LOG_EVERY_SECONDS."""

    def __init__(self, log: logging.Logger, every: float = LOG_EVERY_SECONDS):
        self.log, self.every = log, every
        self._last = time.monotonic()

    def __call__(self, phase: str, done: int, total: int | None, elapsed: float) -> None:
        now = time.monotonic()
        if now - self._last < self.every:
            return
        self._last = now
        self.log.info(
            describe(phase, done, total, elapsed),
            extra={
                "event": "backup.progress",
                "phase": phase,
                "bytes": done,
                "total_bytes": total,
                "seconds": round(elapsed, 1),
            },
        )


class TerminalProgress(LogProgress):
    """The CLI's: rewrites one line on a terminal (and logs like the worker)."""

    def __init__(self, log: logging.Logger, stream: TextIO = sys.stderr):
        super().__init__(log)
        self.stream = stream
        self.shown = False

    def __call__(self, phase: str, done: int, total: int | None, elapsed: float) -> None:
        super().__call__(phase, done, total, elapsed)
        if self.stream.isatty():
            self.stream.write("\r" + describe(phase, done, total, elapsed).ljust(78))
            self.stream.flush()
            self.shown = True

    def end(self) -> None:
        if self.shown:
            self.stream.write("\n")
            self.stream.flush()
            self.shown = False
