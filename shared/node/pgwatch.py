"""Keep the embedded Postgres of `ksnode up` running.

supervisord restarts the three programs when they die, but the embedded
Postgres is not one of its programs: it is started by `ksnode up` before
supervisord (the programs need its port in their environment). If it dies
(the OOM killer, a stray `kill`, a crash), nothing would bring it back and
the node would answer 503 until someone restarted it by hand. This watcher
checks it every few seconds and starts it again, on the same port, with a
back-off while it cannot; each step is a log line (``embedded_pg.*``). The
programs' connection pools reconnect on their own.
"""

from __future__ import annotations

import logging
import threading

from shared.db.embedded import EmbeddedPostgres, EmbeddedPostgresError
from shared.infra.errortext import first_line

log = logging.getLogger("ksnode")

CHECK_SECONDS = 2.0
RETRY_MIN_SECONDS = 2.0
RETRY_MAX_SECONDS = 60.0


class EmbeddedWatch:
    def __init__(
        self,
        server: EmbeddedPostgres,
        port: int,
        *,
        check_seconds: float = CHECK_SECONDS,
    ):
        self.server = server
        self.port = port
        self.check_seconds = check_seconds
        self.restarts = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="embedded-pg-watch", daemon=True)

    def __enter__(self) -> EmbeddedWatch:
        self._thread.start()
        return self

    def __exit__(self, *_exc) -> None:
        self.stop()

    def stop(self) -> None:
        """Stop watching (before the server is stopped on purpose)."""
        self._stop.set()
        self._thread.join(timeout=120)  # a restart in progress finishes first

    def _run(self) -> None:
        while not self._stop.wait(self.check_seconds):
            if self.server.running_port() is None:
                self._bring_back()

    def _bring_back(self) -> None:
        log.error(
            "embedded postgres is not running; starting it again",
            extra={"event": "embedded_pg.died", "port": self.port},
        )
        delay = RETRY_MIN_SECONDS
        while not self._stop.is_set():
            if not self.server.initialised():
                # Never initdb an empty cluster in place of a lost one: the
                # node would serve as if it had no users.
                log.error(
                    "embedded postgres data directory is gone; not starting it",
                    extra={
                        "event": "embedded_pg.data_missing",
                        "data_dir": str(self.server.data_dir),
                    },
                )
                if self._stop.wait(RETRY_MAX_SECONDS):
                    return
                continue
            try:
                self.server.port = self.port  # the programs know this port
                self.server.start()
            except (EmbeddedPostgresError, OSError) as exc:
                # e.g. backends of the dead server still hold its shared
                # memory for a moment, or the disk is full: try again later.
                log.error(
                    "embedded postgres did not start again; retrying",
                    extra={
                        "event": "embedded_pg.restart_failed",
                        "error": first_line(exc, 300),
                        "retry_in_seconds": delay,
                    },
                )
                if self._stop.wait(delay):
                    return
                delay = min(delay * 2, RETRY_MAX_SECONDS)
                continue
            self.restarts += 1
            log.warning(
                "embedded postgres started again",
                extra={"event": "embedded_pg.restarted", "port": self.port},
            )
            return
