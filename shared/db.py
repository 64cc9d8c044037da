"""Postgres connections: DSN building, a thread-safe pool, transactions.

Every program uses ``Database``; handlers and loops take a cursor from
``db.transaction()`` (commit on success, rollback on any exception) or
``db.cursor()`` for reads. A connection that broke (server restart, network)
is discarded instead of being returned to the pool, so the next request gets a
fresh one and the process never needs a restart after a database outage.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg2
import psycopg2.extensions
import psycopg2.extras
import psycopg2.pool

from shared.config import Config


class DatabaseUnavailable(Exception):
    """The database could not be reached (message is safe to show)."""


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
        "port": config.db_port,
        "user": config.db_user,
        "dbname": dbname or config.db_name,
        "connect_timeout": 5,
        "application_name": "ksnode",
    }
    if config.db_password:
        kwargs["password"] = str(config.db_password)
    sslmode = config.db_sslmode or ("require" if config.db_ssl else "prefer")
    kwargs["sslmode"] = sslmode
    if config.db_sslrootcert:
        kwargs["sslrootcert"] = config.db_sslrootcert
    return kwargs


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
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    where = f"{config.db_user}@{config.db_host}:{config.db_port}/{dbname or config.db_name}"
    return f"cannot connect to Postgres at {where}: {first}"


def is_connection_error(exc: BaseException) -> bool:
    return isinstance(exc, psycopg2.OperationalError | psycopg2.InterfaceError)


class Database:
    """A pool of connections shared by the threads of one process."""

    def __init__(self, config: Config, *, minconn: int = 1, maxconn: int | None = None):
        self.config = config
        self._kwargs = connect_kwargs(config)
        self._maxconn = maxconn or config.db_pool_size
        self._pool: psycopg2.pool.ThreadedConnectionPool | None = None
        self._minconn = minconn
        self._lock = threading.Lock()
        self._in_use = 0

    @property
    def in_use(self) -> int:
        return self._in_use

    @property
    def max_size(self) -> int:
        return self._maxconn

    def _get_pool(self) -> psycopg2.pool.ThreadedConnectionPool:
        pool = self._pool
        if pool is not None:
            return pool
        with self._lock:
            if self._pool is None:
                try:
                    self._pool = psycopg2.pool.ThreadedConnectionPool(
                        0, self._maxconn, **self._kwargs)
                except psycopg2.OperationalError as exc:
                    raise DatabaseUnavailable(describe_connect_error(exc, self.config)) from None
            return self._pool

    @contextmanager
    def connection(self) -> Iterator[Any]:
        pool = self._get_pool()
        try:
            conn = pool.getconn()
        except psycopg2.pool.PoolError:
            raise DatabaseUnavailable("connection pool exhausted") from None
        except psycopg2.OperationalError as exc:
            raise DatabaseUnavailable(describe_connect_error(exc, self.config)) from None
        self._in_use += 1
        broken = False
        try:
            yield conn
        except BaseException as exc:
            broken = is_connection_error(exc) or conn.closed != 0
            if not broken:
                try:
                    conn.rollback()
                except psycopg2.Error:
                    broken = True
            raise
        finally:
            self._in_use -= 1
            if conn.closed:
                broken = True
            elif not broken and conn.status != psycopg2.extensions.STATUS_READY:
                try:
                    conn.rollback()
                except psycopg2.Error:
                    broken = True
            pool.putconn(conn, close=broken)

    @contextmanager
    def transaction(self) -> Iterator[Any]:
        """A cursor inside one transaction: commit on success, rollback otherwise."""
        with self.connection() as conn:
            with conn.cursor() as cur:
                yield cur
            conn.commit()

    @contextmanager
    def cursor(self) -> Iterator[Any]:
        """A cursor for reads; the transaction is committed (ended) afterwards."""
        with self.transaction() as cur:
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
            if self._pool is not None:
                self._pool.closeall()
                self._pool = None
