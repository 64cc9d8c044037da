"""Start-up and shut-down plumbing shared by the three programs.

``run`` is each program's main: the prologue every supervised program
needs (``bootstrap``: config, logging, database pool, cipher; signals; wait
for the database; refuse unknown keys), then either the program's loop
(heartbeat, one step every interval until SIGTERM) or, for the API, its
own serving. A start-up problem exits with one clear message and a code from
shared/exitcodes.py — never a traceback. ``StopFlag`` is the
SIGTERM/SIGINT-driven event the loops wait on.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from shared.config import Config, ConfigError, load_config
from shared.crypto.sealing import Cipher, SecretError
from shared.crypto.secretfiles import load_cipher
from shared.db.pool import Database, DatabaseUnavailable
from shared.exitcodes import ExitCode
from shared.infra.errortext import first_line
from shared.infra.logging import configure_logging
from shared.infra.parentdeath import die_with_parent
from shared.infra.signalstop import SignalStop
from shared.program.heartbeat import announce_stop, start_heartbeat

log = logging.getLogger(__name__)


@dataclass
class Runtime:
    program: str
    config: Config
    db: Database
    cipher: Cipher
    log: logging.Logger


def fail(message: str, code: int = ExitCode.CONFIG) -> None:
    """Print one clear message to stderr and exit without a traceback."""
    print(f"ksnode: {message}", file=sys.stderr, flush=True)
    raise SystemExit(int(code))


def load_config_or_exit() -> Config:
    try:
        return load_config()
    except ConfigError as exc:
        fail(str(exc))
        raise  # unreachable, for type checkers


def bootstrap(program: str, config: Config | None = None) -> Runtime:
    if os.environ.get("SUPERVISOR_ENABLED") == "1":
        die_with_parent()  # a killed supervisord leaves no program serving on as an orphan
    config = config or load_config_or_exit()
    if config.db_host is None:
        fail(
            "DB_HOST is not set: start the node with `ksnode up` (it runs the embedded "
            "Postgres and sets DB_HOST for its programs) or set DB_HOST"
        )
    program_log = configure_logging(program, config.effective_log_dir, config.log_level)
    try:
        cipher = load_cipher(config.effective_secret_path, config.encryption_secret_previous_paths)
    except SecretError as exc:
        program_log.error("cannot start: %s", exc, extra={"event": "startup.failed"})
        fail(str(exc))
        raise
    db = Database(config)
    return Runtime(program, config, db, cipher, program_log)


def wait_for_database(
    db: Database,
    stop: threading.Event,
    program_log: logging.Logger,
    *,
    attempts: int = 30,
    delay: float = 1.0,
) -> None:
    """Wait until the database answers; exit with one log line if it never does."""
    last_error = ""
    for _ in range(attempts):
        try:
            with db.cursor() as cur:
                cur.execute("SELECT 1")
            return
        except DatabaseUnavailable as exc:
            last_error = str(exc)
        except Exception as exc:  # noqa: BLE001 - psycopg2 errors vary
            last_error = first_line(exc)
        if stop.wait(delay):
            raise SystemExit(0)
    program_log.error(
        "database unreachable, giving up",
        extra={"event": "startup.db_unreachable", "error": last_error},
    )
    fail(last_error, code=ExitCode.DATABASE_UNREACHABLE)


def check_keys_or_exit(runtime: Runtime) -> None:
    """Refuse to serve when stored values are under a secret this node lacks
    (keycheck.py): one log line and one stderr line, then exit."""
    import psycopg2

    from shared.keys.keycheck import KeyCheckFailed, verify_keys

    try:
        verify_keys(runtime.db, runtime.cipher)
    except (DatabaseUnavailable, psycopg2.Error) as exc:
        reason = first_line(exc)
        runtime.log.error(
            "cannot check the stored keys", extra={"event": "startup.failed", "error": reason}
        )
        fail(f"cannot check the stored keys: {reason}", code=ExitCode.DATABASE_UNREACHABLE)
    except KeyCheckFailed as exc:
        runtime.log.error("refusing to start: %s", exc, extra={"event": "startup.unknown_key"})
        fail(f"refusing to start: {exc}")


class StopFlag(SignalStop):
    """Set by SIGTERM or SIGINT; loops call ``stop.wait(interval)``. The
    handler only records the signal (shared/infra/signalstop.py says why);
    the line saying so is written by the first thread that sees it."""

    def install(self) -> StopFlag:
        signal.signal(signal.SIGTERM, self.request)
        signal.signal(signal.SIGINT, self.request)
        return self

    def noticed(self, signum: int) -> None:
        log.info("stop requested", extra={"event": "signal", "signal": signal.Signals(signum).name})


class Loop(Protocol):
    """What a looping program (backup worker, reporter) hands to ``run``."""

    def startup(self) -> None:
        """Once, after the heartbeat started and the program said so."""

    def run_once(self) -> Any:
        """One round; errors it can live with are its own to catch."""


def run(
    program: str,
    start: Callable[[Runtime, StopFlag], Loop | None],
    *,
    every: Callable[[Config], float] | None = None,
    label: str | None = None,
    started: Callable[[Config], dict[str, Any]] | None = None,
) -> None:
    """The main of a supervised program.

    After the common prologue, ``start(runtime, stop)`` does what only this
    program does before it may serve (load the keypair...). It returns the
    ``Loop`` to run every ``every(config)`` seconds until SIGTERM, with a
    heartbeat; or ``None`` when it has served by itself until stopped (the
    API's worker pool has its own heartbeats and signals).
    """
    runtime = bootstrap(program)
    stop = StopFlag().install()
    wait_for_database(runtime.db, stop, runtime.log)
    check_keys_or_exit(runtime)  # before serving anything
    name = label or program
    loop = start(runtime, stop)
    if loop is not None:
        assert every is not None, "a looping program needs its interval"
        beater = start_heartbeat(runtime.db, runtime.config, program, stop)
        runtime.log.info(
            f"{name} started",
            extra={"event": f"{program}.started", **(started(runtime.config) if started else {})},
        )
        loop.startup()
        while not stop.is_set():
            loop.run_once()
            stop.wait(every(runtime.config))
        beater.join(10)  # its last beat lands before the stop is recorded
        announce_stop(runtime.db, runtime.config.effective_node_id, program)
        runtime.db.close()
    runtime.log.info(f"{name} stopped", extra={"event": f"{program}.stopped"})
