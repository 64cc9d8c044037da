"""Postgres connections: DSN building, a thread-safe pool, transactions.

Every program uses ``Database``; handlers and loops take a cursor from
``db.transaction()`` (commit on success, rollback on any exception) or
``db.cursor()`` for reads. A connection that broke (server restart, network)
is discarded instead of being returned to the pool, so the next request gets a
fresh one and the process never needs a restart after a database outage.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from typing import Any

import psycopg2
import psycopg2.extensions
import psycopg2.extras

from shared.config import Config
from shared.db.failover import (
    failover_reason,
    is_lost_connection,
    reports_read_only,
    server_identity,
)
from shared.db.watchdog import WATCHDOG
from shared.errors import DatabaseFailure
from shared.infra.errortext import first_line

CUT_MARGIN_SECONDS = 2.0  # past query_timeout, before the watchdog cuts (the server acts first)
BREAKER_SECONDS = 3.0  # after a cut: fail at once this long (connection())
SUSPECT_SECONDS = 2.0  # then: the next block's deadline


log = logging.getLogger("ksnode.db")


class DatabaseUnavailable(DatabaseFailure):
    """The database could not be reached (message is safe to show)."""


TCP_KEEPALIVES: dict[str, Any] = {
    "keepalives": 1,
    "keepalives_idle": 15,  # seconds of silence before the first probe
    "keepalives_interval": 5,
    "keepalives_count": 3,
    "tcp_user_timeout": 30_000,  # ms: sent data (or probes) unacknowledged that long
}


def connect_kwargs(config: Config, dbname: str | None = None) -> dict[str, Any]:
    """libpq parameters for this configuration.

    ``DB_SSL=true`` means TLS without certificate checks, like the reference
    (``sslmode=require``); ``DB_SSLMODE`` overrides it (e.g. ``verify-full``
    with ``DB_SSLROOTCERT``).
    """
    if config.db_host is None:
        raise DatabaseUnavailable("no database host configured (embedded Postgres not started)")
    kwargs: dict[str, Any] = {
        "host": config.db_host,
        "port": config.db_port_text,
        "user": config.db_user,
        "dbname": dbname or config.db_name,
        "connect_timeout": 5,
        "application_name": "ksnode",
        # Only a server that takes writes: with several hosts libpq tries
        # them in order and skips a standby; with one (a name that moves on
        # failover) a standby behind it is refused instead of serving stale
        # reads and refusing writes.
        "target_session_attrs": config.db_session_attrs,
        # A database host that vanished (powered off, a partition: no RST)
        # is noticed within about 30 s by every program, not after the
        # kernel's default of two hours: the backup worker and the reporter
        # have no watchdog of their own, and a failover to another host
        # must not wait for that. A frozen server whose kernel still answers
        # is the API watchdog's (dbwatch.py); these settings cannot see it.
        **TCP_KEEPALIVES,
    }
    if config.db_password:
        kwargs["password"] = str(config.db_password)
    sslmode = config.db_sslmode or ("require" if config.db_ssl else "prefer")
    kwargs["sslmode"] = sslmode
    if config.db_sslrootcert:
        kwargs["sslrootcert"] = config.db_sslrootcert
    return kwargs


# Each pool connection's settings, in one round trip when it is made.
# plan_cache_mode: the hot statements are prepared once per connection
# (execute_prepared) and must run their generic plan. Left to "auto",
# Postgres keeps planning the share lookup anew on every execution (its
# generic plan's estimate, made for an array of unknown length, never beats
# a custom plan's), which cost four times the lookup itself: 0.2 ms of
# planning for 0.05 ms of index scans. The statements are written so their
# generic plan is index lookups whatever the tables hold (shares.py).
GENERIC_PLANS_SQL = "SELECT set_config('plan_cache_mode', 'force_generic_plan', false)"
SESSION_SETUP_SQL = (
    GENERIC_PLANS_SQL
    + ", set_config('statement_timeout', %s, false), set_config('lock_timeout', %s, false)"
)


# A block with a shorter deadline than the pool's (a /health probe, the
# block after a cut) gets server-side limits that fit inside it, so a live
# server that is only slow (a lock held elsewhere) ends the statement itself
# and answers before the watchdog would cut: the statement does not go on
# waiting in Postgres after the request was answered, and a slow server is
# not taken for a frozen one (the breaker, connection()). The pool's own
# limits are put back when the block ends.
LIMITS_SQL = (
    "SELECT set_config('statement_timeout', %s, false), set_config('lock_timeout', %s, false)"
)
FIT_MARGIN_SECONDS = 0.5  # the server's answer must arrive before the watchdog's next look


def server_limits(statement_seconds: float) -> tuple[str, str]:
    """statement_timeout and lock_timeout (half of it) in milliseconds."""
    return f"{statement_seconds * 1000:.0f}", f"{statement_seconds * 500:.0f}"


class KsnConnection(psycopg2.extensions.connection):
    """A connection that remembers which statements it has prepared."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.prepared: set[str] = set()
        self.generation = 0  # the pool's generation when it was made (Database)


def execute_prepared(cur, name: str, sql: str, params: tuple) -> None:
    """Run a hot statement as a server-side prepared statement, so Postgres
    plans it once per connection instead of on every request. ``sql`` uses
    $1, $2 ... placeholders. Prepared statements survive a rollback, so the
    per-connection record stays true."""
    conn = cur.connection
    prepared = getattr(conn, "prepared", None)
    execute = f"EXECUTE {name} ({', '.join(['%s'] * len(params))})" if params else f"EXECUTE {name}"
    if prepared is None:  # a plain connection (tools, tests): prepare, run, forget
        cur.execute(f"PREPARE {name} AS {sql}")
        try:
            cur.execute(execute, params)
        finally:
            cur.execute(f"DEALLOCATE {name}")
        return
    if name not in prepared:
        cur.execute(f"PREPARE {name} AS {sql}")
        prepared.add(name)
    cur.execute(execute, params)


def connect(config: Config, dbname: str | None = None, *, autocommit: bool = False):
    """One plain connection (migrations, CLI, background programs)."""
    try:
        conn = psycopg2.connect(**connect_kwargs(config, dbname))
    except psycopg2.OperationalError as exc:
        raise DatabaseUnavailable(describe_connect_error(exc, config, dbname)) from None
    conn.autocommit = autocommit
    return conn


def describe_connect_error(exc: Exception, config: Config, dbname: str | None = None) -> str:
    """A one-line reason naming host/port/db/user but never the password."""
    first = first_line(exc)
    where = f"{config.db_user}@{config.db_host}:{config.db_port_text}/{dbname or config.db_name}"
    return f"cannot connect to Postgres at {where}: {first}"


class Database:
    """A pool of connections shared by the threads of one process.

    Idle connections are kept (up to ``maxconn``) and reused last-in
    first-out; psycopg2's own pool closes everything above ``minconn``,
    which costs a new connection per request.
    """

    def __init__(
        self,
        config: Config,
        *,
        maxconn: int | None = None,
        acquire_timeout: float = 10.0,
        query_timeout: float | None = None,
    ):
        """``query_timeout`` (the API: DB_QUERY_TIMEOUT_SECONDS): a statement
        may run that long and wait for a lock half as long (server-side
        limits), and an operation on a connection that has not answered a
        little after that is cut (dbwatch.py): a request gets its 503
        instead of hanging with a stuck or frozen database."""
        self.config = config
        self.query_timeout = query_timeout
        self._breaker_until = 0.0  # see connection()
        self._suspect = False
        self._kwargs = connect_kwargs(config)
        self._maxconn = maxconn or config.db_pool_size
        self._idle: list[Any] = []
        self._slots = threading.BoundedSemaphore(self._maxconn)
        self._lock = threading.Lock()
        self._in_use = 0
        self._acquire_timeout = acquire_timeout
        self._closed = False
        # Failover: connections made before the last sign of one are dropped
        # (generation); the server new connections reach is remembered so a
        # move to another one is counted.
        self._generation = 0
        self.server: str | None = None
        self.failovers_seen = 0
        self.on_failover = None  # called with (old, new) server on each one seen

    @property
    def connect_params(self) -> dict[str, Any]:
        """libpq parameters of this pool's connections (a password among them:
        never log these)."""
        return dict(self._kwargs)

    @property
    def in_use(self) -> int:
        return self._in_use

    @property
    def max_size(self) -> int:
        return self._maxconn

    @property
    def closed(self) -> bool:
        return self._closed

    def _acquire(self):
        if self._closed:  # a closed pool opens no new connections
            raise DatabaseUnavailable("the connection pool is closed")
        if not self._slots.acquire(timeout=self._acquire_timeout):
            raise DatabaseUnavailable("all database connections are busy")
        with self._lock:
            conn = self._idle.pop() if self._idle else None
            self._in_use += 1
        if conn is not None and self._usable(conn):
            return conn
        if conn is not None:
            self._discard(conn)
        started = time.monotonic()
        kwargs = self._kwargs
        if self.query_timeout and self._suspect:  # libpq's shortest: 2 s
            kwargs = {**kwargs, "connect_timeout": max(2, int(SUSPECT_SECONDS))}
        try:
            conn = psycopg2.connect(connection_factory=KsnConnection, **kwargs)
            conn.generation = self._generation
            # Autocommit: a plain read is one round trip (no COMMIT after it);
            # transaction() issues BEGIN/COMMIT itself.
            conn.autocommit = True
            with conn.cursor() as cur:
                if self.query_timeout:  # else the server's (or role's) own limits stay
                    cur.execute(SESSION_SETUP_SQL, server_limits(self.query_timeout))
                else:
                    cur.execute(GENERIC_PLANS_SQL)
            self._note_server(server_identity(conn))
            return conn
        except psycopg2.OperationalError as exc:
            self._release(None, broken=True)
            if self.query_timeout and time.monotonic() - started >= SUSPECT_SECONDS:
                # Not refused: no answer (a frozen host). Like a cut: the
                # requests queued behind this one must not each wait for
                # their own connection attempt to time out.
                self._open_breaker()
            raise DatabaseUnavailable(describe_connect_error(exc, self.config)) from None
        except BaseException:
            self._release(None, broken=True)
            raise

    def _usable(self, conn) -> bool:
        """An idle connection may serve the next block: open, made since the
        last failover sign, and its server not reporting itself read-only
        (free: libpq keeps those settings from the server's reports)."""
        return (
            not conn.closed and conn.generation == self._generation and not reports_read_only(conn)
        )

    @staticmethod
    def _discard(conn) -> None:
        try:
            conn.close()
        except psycopg2.Error:
            pass

    def _note_server(self, server: str) -> None:
        """A new connection reached ``server``: a different one than before
        means a failover (or a moved address); connections to the old one
        must not serve reads either."""
        with self._lock:
            old, self.server = self.server, server
            moved = old is not None and old != server
            if moved:
                self.failovers_seen += 1
                self._generation += 1
                stale, self._idle = self._idle, []
            else:
                stale = []
        for conn in stale:
            self._discard(conn)
        if moved:
            log.warning(
                "database server changed",
                extra={"event": "db.failover_seen", "old_server": old, "new_server": server},
            )
            if self.on_failover is not None:
                self.on_failover(old, server)

    def failover_sign(self, reason: str) -> None:
        """A connection said the server is not the primary (any more): every
        connection made until now is suspect and is dropped when next seen."""
        with self._lock:
            self._generation += 1
            stale, self._idle = self._idle, []
        for conn in stale:
            self._discard(conn)
        log.warning(
            "database connections dropped", extra={"event": "db.failover_sign", "error": reason}
        )

    def _release(self, conn, *, broken: bool) -> None:
        with self._lock:
            self._in_use -= 1
            keep = (
                conn is not None
                and not broken
                and not conn.closed
                and not self._closed
                and conn.generation == self._generation
            )
            if keep:
                self._idle.append(conn)
        if conn is not None and not keep:
            try:
                conn.close()
            except psycopg2.Error:
                pass
        self._slots.release()

    @contextmanager
    def connection(self, timeout: float | None = None) -> Iterator[Any]:
        """A pooled connection; ``timeout`` (default: ``query_timeout`` plus a
        margin for the server's own limit to act first) bounds the block.

        With ``query_timeout`` set (the API), a block cut by the watchdog
        opens a breaker: for BREAKER_SECONDS every block fails at once with
        DatabaseUnavailable, and the first one after that gets a short
        deadline. A worker runs one request at a time (gate.py): without it,
        each request would hold the worker for the full deadline against a
        frozen database, and the ones queued behind it (/status and /health
        too) would wait for all of them."""
        limit = timeout or (self.query_timeout and self.query_timeout + CUT_MARGIN_SECONDS)
        if self.query_timeout:
            now = time.monotonic()
            if now < self._breaker_until:
                raise DatabaseUnavailable("the database gave no answer moments ago")
            if self._suspect:
                limit = SUSPECT_SECONDS if limit is None else min(limit, SUSPECT_SECONDS)
        fitted = self._fitted_limits(limit)
        conn = self._acquire()
        broken = cut = False
        failover: str | None = None
        try:
            with WATCHDOG.watch(conn, limit) if limit else nullcontext():
                if fitted is None:
                    yield conn
                else:
                    with conn.cursor() as cur:
                        cur.execute(LIMITS_SQL, fitted)
                    try:
                        yield conn
                    finally:
                        self._restore_limits(conn)
        except BaseException as exc:
            failover = failover_reason(exc)
            broken = is_lost_connection(exc) or conn.closed != 0 or failover is not None
            # was_cut answers once: asked here, its answer is kept for the
            # breaker below (asked again there it would say no).
            cut = bool(limit) and WATCHDOG.was_cut(conn)
            if failover is not None and not cut:
                self.failover_sign(failover)
                if not isinstance(exc, psycopg2.OperationalError | psycopg2.InterfaceError):
                    # e.g. 25006 (read-only): a 503 like any outage
                    raise DatabaseUnavailable(failover) from None
            raise
        finally:
            if not cut and limit:  # only a watched block can be cut
                cut = WATCHDOG.was_cut(conn)
            if cut:
                broken = True
                self._open_breaker()
            elif not broken:
                self._suspect = False
            if (
                not broken
                and not conn.closed
                and conn.info.transaction_status != psycopg2.extensions.TRANSACTION_STATUS_IDLE
            ):
                try:
                    with conn.cursor() as cur:
                        cur.execute("ROLLBACK")
                except psycopg2.Error:
                    broken = True
            self._release(conn, broken=broken)

    def _open_breaker(self) -> None:
        """The database gave no answer: fail at once for BREAKER_SECONDS,
        then give the next block SUSPECT_SECONDS (connection())."""
        self._breaker_until = time.monotonic() + BREAKER_SECONDS
        self._suspect = True

    def _fitted_limits(self, limit: float | None) -> tuple[str, str] | None:
        """Server-side limits for a block whose deadline ``limit`` is shorter
        than the pool's own limits allow for (None: the pool's fit)."""
        if not self.query_timeout or not limit:
            return None
        statement = max(limit - FIT_MARGIN_SECONDS, limit / 2)
        return server_limits(statement) if statement < self.query_timeout else None

    def _restore_limits(self, conn) -> None:
        """Put the pool's limits back on ``conn`` after a fitted block; a
        connection where that cannot be done is closed (not pooled again)."""
        if conn.closed:
            return
        if conn.info.transaction_status == psycopg2.extensions.TRANSACTION_STATUS_IDLE:
            try:
                with conn.cursor() as cur:
                    cur.execute(LIMITS_SQL, server_limits(self.query_timeout or 0))
                return
            except psycopg2.Error:
                pass
        # A transaction left open (its ROLLBACK would undo a set_config made
        # in it) or a failed reset: the connection goes rather than keep
        # short limits for a later block.
        self._discard(conn)

    @contextmanager
    def transaction(self, timeout: float | None = None) -> Iterator[Any]:
        """A cursor inside one transaction: commit on success, rollback otherwise."""
        with self.connection(timeout) as conn:
            with conn.cursor() as cur:
                cur.execute("BEGIN")
                try:
                    yield cur
                except BaseException:
                    if not conn.closed:
                        try:
                            cur.execute("ROLLBACK")
                        except psycopg2.Error:
                            pass
                    raise
                cur.execute("COMMIT")

    @contextmanager
    def cursor(self, timeout: float | None = None) -> Iterator[Any]:
        """A cursor outside any transaction: each statement commits on its own.
        Use it for reads and single-statement writes (one round trip each)."""
        with self.connection(timeout) as conn:
            with conn.cursor() as cur:
                yield cur

    def ping(self) -> bool:
        try:
            with self.cursor() as cur:
                cur.execute("SELECT 1")
                return cur.fetchone() == (1,)
        except (DatabaseUnavailable, psycopg2.Error):
            return False

    def close(self) -> None:
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
        for conn in idle:
            try:
                conn.close()
            except psycopg2.Error:
                pass
