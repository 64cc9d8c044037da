"""Carries supervisord's output to `ksnode up`'s stdout.

The programs write JSON lines to their stdout, which supervisord passes on
to its own (supervisord.conf: ``stdout_logfile=/dev/stdout``); those lines
go through unchanged, so the foreground and ``docker compose logs`` show
what the programs log. supervisord's own plain-text lines become JSON lines
with ``"program": "supervisord"``, so the stream stays one format. Anything
else (a program's raw traceback) is passed through as it is.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from typing import BinaryIO

SUPERVISOR_LINE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+ ([A-Z]{4}) (.*)$")
LEVELS = {"CRIT": "critical", "ERRO": "error", "WARN": "warning", "INFO": "info"}
# Said at every start about our unix socket, which is chmod 0700 and so only
# reachable by this user: alarming on screen, and nothing to act on.
DROPPED = ("running without any HTTP authentication checking",)


def convert(raw: bytes) -> bytes | None:
    """The line to print for one line of supervisord's output (None: drop it)."""
    text = raw.decode("utf-8", "replace").rstrip("\r\n")
    match = SUPERVISOR_LINE.match(text)
    if match is None:
        return raw if raw.endswith(b"\n") else raw + b"\n"
    level, message = match.groups()
    if any(fragment in message for fragment in DROPPED):
        return None
    stamp = dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    line = {
        "time": stamp,
        "level": LEVELS.get(level, "debug"),
        "program": "supervisord",
        "message": message,
    }
    return (json.dumps(line) + "\n").encode()


def relay(source: BinaryIO, sink: BinaryIO) -> None:
    """Copy ``source`` to ``sink`` line by line until end of file."""
    for raw in iter(source.readline, b""):
        line = convert(raw)
        if line is None:
            continue
        try:
            sink.write(line)
            sink.flush()
        except (BrokenPipeError, ValueError):  # nobody reads our stdout any more
            continue
