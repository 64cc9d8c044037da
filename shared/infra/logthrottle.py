"""One log line per interval for an event that repeats with every request.

While the database is away, every request that needs it fails the same way;
a line per request would write a busy node's whole load into the log (and
fill the disk that an outage may already be about). The first failure is
logged at once; the rest within the interval are counted and the next line
says how many were left out.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

DEFAULT_INTERVAL_SECONDS = 1.0


class LogThrottle:
    def __init__(
        self,
        interval: float = DEFAULT_INTERVAL_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.interval = interval
        self._clock = clock
        self._lock = threading.Lock()
        self._last: dict[str, float] = {}
        self._left_out: dict[str, int] = {}

    def allow(self, key: str) -> int | None:
        """None: leave this line out. Otherwise log it, with the returned
        count of lines left out since the previous one."""
        now = self._clock()
        with self._lock:
            if now - self._last.get(key, float("-inf")) < self.interval:
                self._left_out[key] = self._left_out.get(key, 0) + 1
                return None
            self._last[key] = now
            return self._left_out.pop(key, 0)
