"""Start-up and shut-down plumbing shared by the three programs.

``bootstrap`` turns the environment into a ready-to-use ``Runtime`` (config,
logging, database pool, cipher) or exits with one clear message and status 2
— never a traceback. ``StopFlag`` is the SIGTERM/SIGINT-driven event the
program loops wait on.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass

from shared.config import Config, ConfigError, load_config
from shared.crypto.sealing import Cipher, SecretError
from shared.crypto.secretfiles import load_cipher
from shared.db.pool import Database, DatabaseUnavailable
from shared.infra.errortext import first_line
from shared.infra.logging import configure_logging
from shared.infra.parentdeath import die_with_parent

log = logging.getLogger(__name__)

EXIT_CONFIG = 2


@dataclass
class Runtime:
    program: str
    config: Config
    db: Database
    cipher: Cipher
    log: logging.Logger


def fail(message: str, code: int = EXIT_CONFIG) -> None:
    """Print one clear message to stderr and exit without a traceback."""
    print(f"ksnode: {message}", file=sys.stderr, flush=True)
    raise SystemExit(code)


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
    fail(last_error, code=3)


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
        fail(f"cannot check the stored keys: {reason}", code=3)
    except KeyCheckFailed as exc:
        runtime.log.error("refusing to start: %s", exc, extra={"event": "startup.unknown_key"})
        fail(f"refusing to start: {exc}")


class StopFlag(threading.Event):
    """Set by SIGTERM or SIGINT; loops call ``stop.wait(interval)``."""

    def install(self, on_stop: Callable[[], None] | None = None) -> StopFlag:
        def handler(signum, _frame):
            log.info(
                "stop requested", extra={"event": "signal", "signal": signal.Signals(signum).name}
            )
            self.set()
            if on_stop is not None:
                on_stop()

        signal.signal(signal.SIGTERM, handler)
        signal.signal(signal.SIGINT, handler)
        return self
