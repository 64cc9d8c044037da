"""One request at a time runs Python in an API worker process.

The GIL lets only one thread run Python anyway; letting waitress's threads
contend for it costs more than the work itself (each hand-over is a context
switch, and a thread woken for I/O waits out the switch interval), so a
worker with one busy thread serves more requests, with a far lower p99, than
one with four. Threads are still worth having for what is not Python work:
waiting on an identity provider or on a backup job. So every request holds
the worker's gate while it runs, and code that waits on something slow
outside the process steps out of it with ``outside_gate()``.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

_gate = threading.Lock()
_holding = threading.local()


class GatedApp:
    """WSGI middleware: run the wrapped application while holding the gate."""

    def __init__(self, app):
        self.app = app

    def __call__(self, environ, start_response):
        with _gate:
            _holding.value = True
            try:
                return self.app(environ, start_response)
            finally:
                _holding.value = False


@contextmanager
def outside_gate() -> Iterator[None]:
    """Let other requests of this worker run while this thread waits.

    A no-op when the thread does not hold the gate (tests calling code
    directly, single-request tools), so callers need not know.
    """
    if not getattr(_holding, "value", False):
        yield
        return
    _holding.value = False
    _gate.release()
    try:
        yield
    finally:
        _gate.acquire()
        _holding.value = True


@contextmanager
def inside_gate() -> Iterator[None]:
    """Run a background thread's Python work between requests rather than
    interleaved with one (the audit trail's batches): threads contending
    for the GIL cost more than the work. A no-op for a thread that already
    holds the gate."""
    if getattr(_holding, "value", False):
        yield
        return
    with _gate:
        _holding.value = True
        try:
            yield
        finally:
            _holding.value = False
