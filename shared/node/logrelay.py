"""Carries supervisord's output to `ksnode up`'s stdout.

The programs write JSON lines to their stdout, which supervisord keeps in
each program's capture file (``LOG_DIR/supervisor/<program>.log``, so that
``supervisorctl tail`` works); shared/node/logfollow.py follows those files and
hands their new lines to ``Relay.offer``. They go through unchanged, so the
foreground and ``docker compose logs`` show what the programs log. supervisord's own plain-text lines become JSON lines
with ``"program": "supervisord"``, so the stream stays one format. Anything
else (a program's raw traceback) is passed through as it is.

Whoever reads our stdout must never slow the node down: lines wait in a
bounded queue for a writer thread, and when that is full (nobody reads, or
`ksnode up | less` is paused) new lines are dropped and counted instead of
blocking supervisord and, behind it, the programs. Every line is in
LOG_DIR/ksnode-YYYY-MM-DD.log anyway.
"""

from __future__ import annotations

import datetime as dt
import json
import queue
import re
import threading
from collections.abc import Callable
from typing import IO, BinaryIO

SUPERVISOR_LINE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+ ([A-Z]{4}) (.*)$")
LEVELS = {"CRIT": "critical", "ERRO": "error", "WARN": "warn", "INFO": "info"}
QUEUE_LINES = 10_000
# Said at every start about our unix socket, which is chmod 0700 and so only
# reachable by this user: alarming on screen, and nothing to act on.
QUIET = ("running without any HTTP authentication checking",)


def convert(raw: bytes) -> bytes | None:
    """The line to print for one line of supervisord's output (None: drop it)."""
    text = raw.decode("utf-8", "replace").rstrip("\r\n")
    match = SUPERVISOR_LINE.match(text)
    if match is None:
        return raw if raw.endswith(b"\n") else raw + b"\n"
    level, message = match.groups()
    if any(fragment in message for fragment in QUIET):
        return None
    return _json_line(LEVELS.get(level, "debug"), message)


def _json_line(level: str, message: str, **fields: object) -> bytes:
    stamp = dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    line: dict[str, object] = {
        "time": stamp,
        "level": level,
        "program": "supervisord",
        "message": message,
    }
    line.update(fields)
    return (json.dumps(line) + "\n").encode()


class Relay:
    """Reads ``source`` until end of file; a writer thread prints to ``sink``
    those lines and the ones ``offer``-ed by others; ``before_end`` runs after
    the source ended, before the writer stops (for others' last lines)."""

    def __init__(
        self,
        source: IO[bytes],  # a pipe from subprocess.Popen
        sink: BinaryIO,
        limit: int = QUEUE_LINES,
        before_end: Callable[[], None] | None = None,
    ):
        self.source = source
        self.sink = sink
        self.before_end = before_end
        self.lines: queue.Queue[bytes | None] = queue.Queue(maxsize=limit)
        self.dropped = 0
        self._lock = threading.Lock()
        self.reader = threading.Thread(target=self._read, name="log-relay-read", daemon=True)
        self.writer = threading.Thread(target=self._write, name="log-relay-write", daemon=True)

    def start(self) -> Relay:
        self.reader.start()
        self.writer.start()
        return self

    def _read(self) -> None:
        for raw in iter(self.source.readline, b""):
            line = convert(raw)
            if line is not None:
                self.offer(line)
        if self.before_end is not None:
            self.before_end()
        self.lines.put(None)

    def offer(self, line: bytes) -> None:
        """Queue ``line`` for printing; never blocks (dropped and counted when full)."""
        try:
            self.lines.put_nowait(line)
        except queue.Full:
            with self._lock:
                self.dropped += 1

    def _write(self) -> None:
        while (line := self.lines.get()) is not None:
            with self._lock:
                dropped, self.dropped = self.dropped, 0
            if dropped:
                self._emit(
                    _json_line(
                        "warn",
                        "stdout was not read: log lines dropped here (they are in LOG_DIR)",
                        event="logrelay.dropped",
                        lines=dropped,
                    )
                )
            self._emit(line)

    def _emit(self, line: bytes) -> None:
        try:
            self.sink.write(line)
            self.sink.flush()
        except (BrokenPipeError, ValueError, OSError):  # nobody reads our stdout any more
            pass

    def join(self, timeout: float) -> None:
        """Wait for the last lines (after the source closed), at most ``timeout``."""
        self.reader.join(timeout)
        self.writer.join(timeout)
