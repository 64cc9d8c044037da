"""`ksnode up` with an external database that does not answer yet.

After a host reboots, the node may start before its Postgres (another host,
another container without a health check). Exiting would make Docker's
restart policy a crash loop; instead the node waits, saying on each attempt
what is wrong (`up.waiting_for_database`, the pause doubling from 1 s to
30 s). It binds the API port only once the database answers, so meanwhile
a client is refused at once rather than left waiting, and a load balancer
sees the node down.

Only errors that time can fix are waited for: refused or timed-out
connections, unknown host names, a server starting or shutting down. A
wrong password, a database that does not exist or a TLS misconfiguration
stop the start with one line, as before: waiting would hide them.
"""

from __future__ import annotations

import logging
import signal
import time

from shared.config import Config
from shared.db.pool import DatabaseUnavailable, connect
from shared.errors import DatabaseFailure
from shared.infra.signalstop import SignalStop

log = logging.getLogger("ksnode")

FIRST_PAUSE_SECONDS = 1.0
LONGEST_PAUSE_SECONDS = 30.0
# libpq's words for a server that is not there (yet); matched in lower case.
TRANSIENT = (
    "connection refused",
    "could not translate host name",
    "temporary failure in name resolution",
    "name or service not known",
    "timeout expired",
    "connection timed out",
    "no route to host",
    "network is unreachable",
    "the database system is starting up",
    "the database system is shutting down",
    "the database system is in recovery mode",
    "server closed the connection unexpectedly",
    "not yet accepting connections",
    "too many clients already",
    "remaining connection slots are reserved",
)


class StopWaiting(DatabaseFailure):
    """SIGTERM or Ctrl-C while waiting."""


def is_transient(reason: str) -> bool:
    text = reason.lower()
    return any(words in text for words in TRANSIENT)


def wait_until_reachable(config: Config) -> None:
    """Return once the database answers. Raises DatabaseUnavailable for an
    error waiting cannot fix, StopWaiting when asked to stop (SIGTERM,
    Ctrl-C), between attempts."""
    pause, attempt, started = FIRST_PAUSE_SECONDS, 0, time.monotonic()
    stop = SignalStop()
    # The container's process 1 ignores SIGTERM unless it handles it. The
    # handler only records the signal: raising from it could land anywhere,
    # and setting an Event could wait on itself (shared/infra/signalstop.py).
    with stop.handling(signal.SIGTERM, signal.SIGINT):
        while not stop.is_set():
            try:
                connect(config).close()
                break
            except DatabaseUnavailable as exc:
                reason = str(exc)
                if not is_transient(reason):
                    raise
            attempt += 1
            log.warning(
                "database not reachable yet; waiting for it",
                extra={
                    "event": "up.waiting_for_database",
                    "error": reason,
                    "attempt": attempt,
                    "retry_in_seconds": pause,
                },
            )
            stop.wait(pause)
            pause = min(pause * 2, LONGEST_PAUSE_SECONDS)
    if stop.is_set():
        raise StopWaiting()
    if attempt:
        log.info(
            "database reachable",
            extra={
                "event": "up.database_reachable",
                "waited_seconds": round(time.monotonic() - started, 1),
            },
        )
