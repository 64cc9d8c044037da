"""A stop flag that a signal handler may raise.

``threading.Event.set()`` takes the event's condition lock, and the main
thread holds that lock for a moment inside every ``Event.wait()``. Python
runs a signal handler in the main thread between two bytecodes, so a
handler that called ``set()`` while the main thread was inside ``wait()``
waited for a lock its own thread held, for ever: the program never
stopped, and outlived its supervisor (a backup worker found still running
minutes after its node was killed, in a CI run).

``SignalStop.request`` is the handler: it stores the signal's number and
takes no lock. ``is_set()`` reads it, and ``wait()`` looks at it at least
every ``POLL_SECONDS``; the first of them to see it calls ``noticed()``
once, outside any handler (where logging is safe).
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

POLL_SECONDS = 0.2  # how late a waiting thread may notice a signal


class SignalStop(threading.Event):
    def __init__(self) -> None:
        super().__init__()
        self.signalled: int | None = None  # the signal that asked to stop
        self._notice_lock = threading.Lock()

    def request(self, signum: int, _frame: FrameType | None = None) -> None:
        """The signal handler: record the request, nothing else (no lock,
        no logging: either could wait on what the interrupted code holds)."""
        self.signalled = signum

    @contextmanager
    def handling(self, *signals: signal.Signals) -> Iterator[SignalStop]:
        """``request`` handles ``signals`` inside the block; the handlers
        found are put back after it."""
        previous = {sig: signal.signal(sig, self.request) for sig in signals}
        try:
            yield self
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def noticed(self, signum: int) -> None:
        """Called once, in a normal thread, when a signal's request is first
        seen; subclasses log it."""

    def is_set(self) -> bool:
        if super().is_set():
            return True
        signum = self.signalled
        if signum is None:
            return False
        self._notice(signum)
        return True

    def wait(self, timeout: float | None = None) -> bool:
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self.is_set():
            left = POLL_SECONDS if deadline is None else deadline - time.monotonic()
            if left <= 0:
                return False
            if super().wait(min(left, POLL_SECONDS)):
                return True
        return True

    def _notice(self, signum: int) -> None:
        with self._notice_lock:
            if super().is_set():  # another thread saw it first
                return
            super().set()  # wakes every waiter at once, from a normal thread
        self.noticed(signum)
