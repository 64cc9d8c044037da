"""Give up on a database that stopped answering, instead of hanging with it.

Server-side limits (``statement_timeout``, ``lock_timeout``: see
``Database(query_timeout=...)``) end a statement that runs or waits too
long, but only a live server can enforce them. A frozen one (its host
paused, its storage hung, the process stopped) keeps the TCP connection
open, the kernel acknowledges every byte, and libpq waits for an answer
forever: every API thread would block in turn, /status and /health
included, and nothing would answer.

The watchdog knows the deadline of each watched block (a connection taken
from the pool, ``Database.connection``). A background thread shuts down the
socket of a block past its deadline, through a descriptor of its own taken
when the block began (the connection's may be closed and its number reused
meanwhile), so the blocked call fails at once with a connection error; the
pool discards that connection and the request gets its 503. Cost per block:
a dup and a close, one dict insert and one delete.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import os
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

log = logging.getLogger("ksnode.db")

CHECK_SECONDS = 0.25


class Watchdog:
    def __init__(self, check_seconds: float = CHECK_SECONDS):
        self.check_seconds = check_seconds
        self._lock = threading.Lock()
        self._watched: dict[int, tuple[float, int, float, Any]] = {}
        self._cut: set[int] = set()  # id() of connections whose socket was shut down
        self._ids = itertools.count()
        self._owner_pid: int | None = None  # the thread does not survive a fork
        self.cuts = 0
        # A fork may happen while this process's watchdog thread holds the
        # lock (the api's parent uses the database before forking workers):
        # the child starts with a fresh lock and nothing watched.
        os.register_at_fork(after_in_child=self._after_fork)

    def _after_fork(self) -> None:
        self._lock = threading.Lock()
        self._watched = {}
        self._cut = set()
        self._owner_pid = None

    @contextlib.contextmanager
    def watch(self, conn: Any, seconds: float) -> Iterator[None]:
        """Run the block with ``conn``'s socket shut down once ``seconds`` pass."""
        self._ensure_thread()
        key = next(self._ids)
        # Our own descriptor of the socket, taken now: should libpq close its
        # own meanwhile (a dropped connection) and the number be reused by
        # another socket, a cut still reaches only this connection's socket.
        fd = os.dup(conn.fileno())
        with self._lock:
            self._watched[key] = (time.monotonic() + seconds, fd, seconds, conn)
        try:
            yield
        finally:
            with self._lock:
                self._watched.pop(key, None)
            os.close(fd)

    def was_cut(self, conn: Any) -> bool:
        """True (once) for a connection whose socket the watchdog shut down."""
        with self._lock:
            if id(conn) in self._cut:
                self._cut.discard(id(conn))
                return True
        return False

    def _ensure_thread(self) -> None:
        if self._owner_pid == os.getpid():
            return
        with self._lock:
            if self._owner_pid == os.getpid():
                return
            self._owner_pid = os.getpid()
            threading.Thread(target=self._run, name="db-watchdog", daemon=True).start()

    def _run(self) -> None:
        while True:
            time.sleep(self.check_seconds)
            now = time.monotonic()
            cut = []
            with self._lock:  # held while cutting: the block (and its fd) cannot end meanwhile
                for key, (deadline, fd, seconds, conn) in list(self._watched.items()):
                    if now < deadline:
                        continue
                    del self._watched[key]
                    if shut_down(fd):
                        self._cut.add(id(conn))
                        self.cuts += 1
                        cut.append(seconds)
            for seconds in cut:  # logged outside the lock: a slow log must not stall queries
                log.error(
                    "database gave no answer in time; connection dropped",
                    extra={"event": "db.no_answer", "seconds": seconds},
                )


def shut_down(fd: int) -> bool:
    """Shut down the socket behind ``fd`` (the watch's own descriptor of it):
    its owner's blocked read returns."""
    try:
        duplicate = os.dup(fd)
    except OSError:
        return False
    sock = socket.socket(fileno=duplicate)
    try:
        sock.shutdown(socket.SHUT_RDWR)
        return True
    except OSError:
        return False
    finally:
        sock.close()  # only this duplicate; the watch closes its own


WATCHDOG = Watchdog()
