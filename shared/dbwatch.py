"""Give up on a database that stopped answering, instead of hanging with it.

Server-side limits (``statement_timeout``, ``lock_timeout``: see
``Database(query_timeout=...)``) end a statement that runs or waits too
long, but only a live server can enforce them. A frozen one (its host
paused, its storage hung, the process stopped) keeps the TCP connection
open, the kernel acknowledges every byte, and libpq waits for an answer
forever: every API thread would block in turn, /status and /health
included, and nothing would answer.

The watchdog knows each operation's deadline. A background thread shuts
down the socket of an operation past its deadline (on a duplicate of its
file descriptor: nothing else's descriptor can be closed by mistake), so
the blocked call fails at once with a connection error; the pool discards
that connection and the request gets its 503. Cost per operation: one dict
insert and one delete.
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
        with self._lock:
            self._watched[key] = (time.monotonic() + seconds, conn.fileno(), seconds, conn)
        try:
            yield
        finally:
            with self._lock:
                self._watched.pop(key, None)

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
            with self._lock:  # held while cutting: the block cannot end meanwhile
                for key, (deadline, fd, seconds, conn) in list(self._watched.items()):
                    if now < deadline:
                        continue
                    del self._watched[key]
                    if shut_down(fd):
                        self._cut.add(id(conn))
                        self.cuts += 1
                        log.error(
                            "database gave no answer in time; connection dropped",
                            extra={"event": "db.no_answer", "seconds": seconds},
                        )


def shut_down(fd: int) -> bool:
    """Shut down the socket behind ``fd`` (its owner's blocked read returns)."""
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
        sock.close()  # only the duplicate: the connection's own fd stays its own


WATCHDOG = Watchdog()
