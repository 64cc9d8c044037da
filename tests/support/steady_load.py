"""A steady HTTP load for restart tests and the restart benchmark.

``clients`` threads each send GET requests back to back until stopped. Half
keep one keep-alive connection (a requests.Session: a restart must move
them cleanly), half open a new connection per request (they must wait in
the listening socket's backlog, never be refused). A request fails when it
raises (refused, reset, timeout) or answers anything but a 200 with a
JSON body; failures are counted by reason.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

import requests


@dataclass
class LoadResult:
    ok: int = 0
    failed: int = 0
    longest_seconds: float = 0.0
    reasons: dict[str, int] = field(default_factory=dict)

    def merge(self, other: LoadResult) -> None:
        self.ok += other.ok
        self.failed += other.failed
        self.longest_seconds = max(self.longest_seconds, other.longest_seconds)
        for reason, count in other.reasons.items():
            self.reasons[reason] = self.reasons.get(reason, 0) + count


class SteadyLoad:
    def __init__(self, url: str, *, clients: int = 8, path: str = "/status", timeout: float = 30):
        self.url = url + path
        self.clients = clients
        self.timeout = timeout
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._result = LoadResult()
        self._threads = [
            threading.Thread(target=self._client, args=(index % 2 == 0,), daemon=True)
            for index in range(clients)
        ]

    def __enter__(self) -> SteadyLoad:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *_exc) -> None:
        self.stop()

    def snapshot(self) -> LoadResult:
        """The counts so far, and start counting afresh."""
        with self._lock:
            result, self._result = self._result, LoadResult()
        return result

    def stop(self) -> LoadResult:
        self._stop.set()
        for thread in self._threads:
            thread.join(self.timeout + 5)
        return self.snapshot()

    def _client(self, keep_alive: bool) -> None:
        session = requests.Session() if keep_alive else None
        while not self._stop.is_set():
            started = time.monotonic()
            reason = None
            try:
                if session is not None:
                    response = session.get(self.url, timeout=self.timeout)
                else:
                    response = requests.get(
                        self.url, timeout=self.timeout, headers={"Connection": "close"}
                    )
                if response.status_code != 200:
                    reason = f"HTTP {response.status_code}"
                else:
                    response.json()
            except requests.RequestException as exc:
                reason = type(exc).__name__ + ": " + str(exc)[:120]
            except ValueError:
                reason = "not JSON"
            elapsed = time.monotonic() - started
            with self._lock:
                result = self._result
                result.longest_seconds = max(result.longest_seconds, elapsed)
                if reason is None:
                    result.ok += 1
                else:
                    result.failed += 1
                    result.reasons[reason] = result.reasons.get(reason, 0) + 1
        if session is not None:
            session.close()
