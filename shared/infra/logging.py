"""JSON-lines logging shared by the three programs.

Every line is one JSON object with ``time`` (UTC ISO-8601), ``level``,
``program`` and ``message`` plus the event's ``extra`` fields; levels are
the operator guide's: debug, info, warn, error, critical. Lines go to
``LOG_DIR/ksnode-YYYY-MM-DD.log`` (the date in the node's time zone, as
``date +%Y-%m-%d`` prints it there; all programs append with O_APPEND, so
their lines interleave whole) and to stdout for supervisord.
Files older than seven days are deleted when a new day's file is opened.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import errno
import logging
import os
import re
import sys
import threading
import time
from pathlib import Path

from pythonjsonlogger.json import JsonFormatter

from shared.infra.errortext import first_line
from shared.infra.safefiles import give_fd, open_regular, owner_of_folder

LOG_FILE_PATTERN = re.compile(r"^ksnode-(\d{4}-\d{2}-\d{2})\.log$")
RETENTION_DAYS = 7
LOG_FILE_MODE = 0o640
LOST_REPORT_SECONDS = 60.0  # at most one "lines lost" report per minute
# Field names whose values must never be logged, whatever a caller passes.
REDACTED_KEYS = frozenset(
    {
        "password",
        "admin_password",
        "db_password",
        "secret",
        "token",
        "authorization",
        "share",
        "enc_share",
        "private_key",
        "ks_node_report_password",
        "telegram_bot_token",
    }
)


def local_today() -> dt.date:
    """Today in the node's time zone (TZ, /etc/localtime): the operator
    guide opens ``ksnode-$(date +%Y-%m-%d).log``, a local date."""
    return dt.datetime.now().date()


# The guide's level names; Python's WARNING is written "warn".
LEVEL_NAMES = {"WARNING": "warn", "CRITICAL": "critical"}


def log_file_name(day: dt.date) -> str:
    return f"ksnode-{day.isoformat()}.log"


def delete_old_logs(log_dir: Path, today: dt.date, keep_days: int = RETENTION_DAYS) -> list[Path]:
    """Remove ksnode-*.log files dated more than ``keep_days`` before today."""
    removed: list[Path] = []
    cutoff = today - dt.timedelta(days=keep_days)
    try:
        entries = list(log_dir.iterdir())
    except OSError:
        return removed
    for entry in entries:
        match = LOG_FILE_PATTERN.match(entry.name)
        if not match:
            continue
        try:
            day = dt.date.fromisoformat(match.group(1))
        except ValueError:
            continue
        if day < cutoff:
            try:
                entry.unlink()
                removed.append(entry)
            except OSError:
                pass
    return removed


def open_day_file(path: Path) -> int:
    """The day's file, opened to append. LOG_DIR belongs to the programs'
    account when the node was started as root, and root (`ksnode up`, a CLI
    command) writes here too: a link or a hard link in the file's place is
    refused (shared/infra/safefiles.py), and a file root creates is handed to
    the folder's owner on the open fd (the programs, run as ``ksnode``,
    append to it). A file that is already there is never chowned."""
    flags = os.O_WRONLY | os.O_APPEND
    for _ in range(3):  # created and removed meanwhile: look again
        try:
            fd = open_regular(path, flags | os.O_CREAT | os.O_EXCL, LOG_FILE_MODE)
        except FileExistsError:
            pass
        else:
            try:
                give_fd(fd, owner_of_folder(path.parent))
            except OSError:
                os.close(fd)
                raise
            return fd
        try:
            return open_regular(path, flags, LOG_FILE_MODE)
        except FileNotFoundError:
            continue
    raise FileNotFoundError(errno.ENOENT, f"{path} keeps disappearing")


class DailyFileHandler(logging.Handler):
    """Appends to the current local day's file; switches files at local midnight."""

    def __init__(self, log_dir: Path):
        super().__init__()
        self.log_dir = Path(log_dir)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self._day: dt.date | None = None
        self._fd: int | None = None
        self._switch_lock = threading.Lock()
        self.lost_lines = 0
        self._last_report = float("-inf")

    def _ensure_file(self) -> int:
        today = local_today()
        if self._fd is not None and self._day == today:
            return self._fd
        with self._switch_lock:
            if self._fd is None or self._day != today:
                if self._fd is not None:
                    os.close(self._fd)
                    self._fd = None
                self._fd = open_day_file(self.log_dir / log_file_name(today))
                self._day = today
                delete_old_logs(self.log_dir, today)
            return self._fd

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = (self.format(record) + "\n").encode("utf-8", "replace")
        except Exception:  # noqa: BLE001 - a bad log call: logging's own report
            self.handleError(record)
            return
        try:
            written = os.write(self._ensure_file(), line)
            if written < len(line):  # the disk filled mid-line: end it, count it lost
                os.write(self._ensure_file(), b"\n")
                self._lost(OSError(f"a line was cut after {written} bytes"))
        except OSError as exc:  # a full or gone disk must never break a request
            self._lost(exc)

    def _lost(self, exc: Exception) -> None:
        """One stderr line per minute at most while lines are being lost (a
        full disk fails every line; logging's own handleError would print a
        traceback for each)."""
        self.lost_lines += 1
        now = time.monotonic()
        if now - self._last_report < LOST_REPORT_SECONDS:
            return
        self._last_report = now
        with contextlib.suppress(Exception):
            sys.stderr.write(
                f"ksnode: cannot write to {self.log_dir}: {first_line(exc, 200)}"
                f" ({self.lost_lines} log lines lost so far)\n"
            )
            sys.stderr.flush()

    def close(self) -> None:
        with self._switch_lock:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None
        super().close()


# A traceback's head and tail are kept, its middle left out: a deep
# recursion (a client's nested input reaching a recursive function) prints
# thousands of frames, and one request must not write 150 kB of log.
TRACEBACK_HEAD = 2_000
TRACEBACK_TAIL = 6_000


def shortened_traceback(text: str) -> str:
    if len(text) <= TRACEBACK_HEAD + TRACEBACK_TAIL:
        return text
    left_out = len(text) - TRACEBACK_HEAD - TRACEBACK_TAIL
    return (
        f"{text[:TRACEBACK_HEAD]}\n... {left_out} characters left out ...\n{text[-TRACEBACK_TAIL:]}"
    )


class KsnodeJsonFormatter(JsonFormatter):
    def __init__(self, program: str):
        super().__init__(reserved_attrs=None, timestamp=False)
        self.program = program

    # python-json-logger widens the return type (a list with exc_info_as_array)
    def formatException(self, ei) -> str | list[str]:  # type: ignore[override]  # noqa: N802
        text = super().formatException(ei)
        return shortened_traceback(text) if isinstance(text, str) else text

    def add_fields(self, log_record, record, message_dict):
        super().add_fields(log_record, record, message_dict)
        for key in list(log_record):
            if key.lower() in REDACTED_KEYS:
                log_record[key] = "[redacted]"
        stamp = dt.datetime.fromtimestamp(record.created, dt.UTC)
        ordered = {
            "time": stamp.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "level": LEVEL_NAMES.get(record.levelname, record.levelname.lower()),
            "program": self.program,
            "logger": record.name,
        }
        ordered.update(log_record)
        log_record.clear()
        log_record.update(ordered)


_STD_ATTRS = set(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {"message", "asctime"}


def configure_logging(
    program: str, log_dir: Path | None, level: str = "info", *, stdout: bool = True
) -> logging.Logger:
    """Route the root logger to the daily file and stdout as JSON lines."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
        handler.close()
    formatter = KsnodeJsonFormatter(program)
    formatter._skip_fields = set(_STD_ATTRS)  # only extras beyond the standard ones
    if log_dir is not None:
        file_handler = DailyFileHandler(log_dir)
        file_handler.setFormatter(formatter)
        root.addHandler(file_handler)
    if stdout:
        stream = logging.StreamHandler(sys.stdout)
        stream.setFormatter(formatter)
        root.addHandler(stream)
    root.setLevel({"warn": "WARNING"}.get(level, level.upper()))
    # Libraries that are chatty at INFO or that could echo URLs with tokens.
    for noisy in ("waitress.queue", "urllib3", "requests"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    return logging.getLogger(program)
