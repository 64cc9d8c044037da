"""Follows the programs' capture files like ``tail -F -n 0``.

Why files and not supervisord's stdout: supervisord gives a program's output
one destination. Sent to ``/dev/stdout`` it reaches `ksnode up` and
``docker compose logs``, but then ``supervisorctl tail`` has nothing to read.
So each program keeps its capture file (``LOG_DIR/supervisor/<program>.log``,
rotated by supervisord) and `ksnode up` reads the new lines of those files
and prints them. supervisord writes to files, never to us, so a slow or
absent reader of our stdout can never stall it or the programs.

Semantics: lines already in a file when following starts are skipped (they
were shown by an earlier start); a file that appears later is read from its
start; a rename (supervisord's rotation: ``x.log`` → ``x.log.1``, new
``x.log``) is noticed by inode, the old file is read to its end and the new
one from its start; a file that shrinks was truncated and is read again from
its start. Memory is bounded: a file is read ``CHUNK`` bytes at a time,
each chunk's lines are handed on at once (to a sink that drops rather than
waits), and a line longer than ``MAX_LINE`` is cut. Polling (no inotify in
the standard library) costs one ``stat`` per file every ``INTERVAL``
seconds; only a file rotated twice within one interval (20 MB in 0.2 s)
would lose the middle file's lines here (never in the files themselves).
Only ``*.log`` in that folder are followed: a ``--supervisor-conf`` that
puts capture files elsewhere gets supervisord's own lines only.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from pathlib import Path

CHUNK = 256 * 1024
CHUNKS_PER_POLL = 16
MAX_LINE = 64 * 1024
INTERVAL = 0.2
# supervisord's own log: its lines reach us through its stdout already.
SKIP = frozenset({"supervisord.log"})


class FollowedFile:
    """One path followed across rotations; ``emit`` gets whole lines."""

    def __init__(self, path: Path, emit: Callable[[bytes], None], *, from_end: bool):
        self.path = path
        self.emit = emit
        self.fd: int | None = None
        self.inode: int | None = None
        self.partial = b""
        self._open(from_end=from_end)

    def _open(self, *, from_end: bool) -> None:
        try:
            fd = os.open(self.path, os.O_RDONLY | os.O_CLOEXEC)
        except OSError:  # not there yet: opened from its start once it is
            return
        info = os.fstat(fd)
        if from_end:
            os.lseek(fd, info.st_size, os.SEEK_SET)
        self.fd, self.inode = fd, info.st_ino

    def poll(self) -> None:
        """Emit the lines written since the last poll."""
        if self.fd is None:
            self._open(from_end=False)
            if self.fd is None:
                return
        self._read()
        try:
            info = os.stat(self.path)
        except OSError:  # renamed and not yet recreated: keep reading the old one
            return
        if info.st_ino != self.inode:
            self._read(to_end=True)  # what was written before the rename
            self._flush_partial()
            self.close()
            self._open(from_end=False)
            self._read()
        elif info.st_size < os.lseek(self.fd, 0, os.SEEK_CUR):
            self._flush_partial()
            os.lseek(self.fd, 0, os.SEEK_SET)
            self._read()

    def _read(self, *, to_end: bool = False) -> None:
        assert self.fd is not None
        chunks = 0
        while to_end or chunks < CHUNKS_PER_POLL:
            data = os.read(self.fd, CHUNK)
            if not data:
                return
            self._split(data)
            chunks += 1

    def _split(self, data: bytes) -> None:
        lines = (self.partial + data).split(b"\n")
        self.partial = lines.pop()
        for line in lines:
            self.emit(line[:MAX_LINE] + b"\n")
        if len(self.partial) >= MAX_LINE:
            self._flush_partial()

    def _flush_partial(self) -> None:
        if self.partial:
            self.emit(self.partial[:MAX_LINE] + b"\n")
            self.partial = b""

    def finish(self) -> None:
        """Read to the end and emit an unterminated last line too."""
        self.poll()
        if self.fd is not None:
            self._read(to_end=True)
        self._flush_partial()

    def close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
        self.fd = self.inode = None


class FollowFolder:
    """Follows every ``*.log`` in ``folder`` (but supervisord's own) in a
    thread, including files that appear later; ``stop()`` reads what is left.

    Created before supervisord starts, so that what the files hold then is
    skipped and everything written after is shown."""

    def __init__(self, folder: Path, interval: float = INTERVAL):
        self.folder = folder
        self.sink: Callable[[bytes], None] = lambda _line: None
        self.interval = interval
        self.files: dict[str, FollowedFile] = {}
        self._stop = threading.Event()
        self._scan(from_end=True)  # now, before the programs start writing
        self.thread = threading.Thread(target=self._run, name="log-follow", daemon=True)

    def _scan(self, *, from_end: bool) -> None:
        try:
            names = sorted(entry.name for entry in os.scandir(self.folder))
        except OSError:
            return
        for name in names:
            if name.endswith(".log") and name not in SKIP and name not in self.files:
                self.files[name] = FollowedFile(self.folder / name, self._emit, from_end=from_end)

    def _emit(self, line: bytes) -> None:
        self.sink(line)

    def start(self, sink: Callable[[bytes], None]) -> FollowFolder:
        """Start passing new lines to ``sink`` (which must never block)."""
        self.sink = sink
        self.thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.is_set():
            self._pass()
            self._stop.wait(self.interval)

    def _pass(self) -> None:
        self._scan(from_end=False)
        for followed in list(self.files.values()):
            try:
                followed.poll()
            except OSError:  # a file we cannot read is skipped, never fatal
                pass

    def stop(self, timeout: float = 5) -> None:
        """Stop following, after emitting every line written so far."""
        self._stop.set()
        if self.thread.is_alive():
            self.thread.join(timeout)
        self._scan(from_end=False)
        for followed in self.files.values():
            try:
                followed.finish()
            except OSError:
                pass
            followed.close()
