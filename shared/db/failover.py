"""Telling a failover from other database errors, and which server we are on.

After a standby is promoted, a connection made before may be to a server
that is now read-only, shutting down or gone. Such a connection is of no
more use: the pool drops it (and every connection made before it) and the
request gets a 503; the next connection reaches the new primary because
libpq is asked for a read-write session (connect_kwargs).
"""

from __future__ import annotations

from typing import Any

import psycopg2

# SQLSTATEs that mean "this server is not the primary (any more)".
FAILOVER_SQLSTATES = {
    "25006": "the database server is read-only (a standby, or demoted)",  # read_only_sql_transaction
    "57P01": "the database server is shutting down",  # admin_shutdown
    "57P02": "the database server crashed",  # crash_shutdown
    "57P03": "the database server is starting up or in recovery",  # cannot_connect_now
}

# Server settings libpq keeps current from the server's reports (GUC_REPORT
# since PostgreSQL 14): reading them costs no round trip.
READ_ONLY_REPORTS = ("in_hot_standby", "default_transaction_read_only")

IDENTITY_SQL = "SELECT inet_server_addr()::text, inet_server_port()"


def failover_reason(exc: BaseException) -> str | None:
    """Why ``exc`` means the connection is to the wrong server now (None: it
    does not; a constraint violation or a bad query leaves it usable)."""
    code = getattr(exc, "pgcode", None)
    if code in FAILOVER_SQLSTATES:
        return FAILOVER_SQLSTATES[code]
    if is_lost_connection(exc):
        return "the connection to the database server was lost"
    return None


def is_lost_connection(exc: BaseException) -> bool:
    """A connection error libpq raised itself (no SQLSTATE): the server was
    not heard. psycopg2 files server errors such as a statement or lock
    timeout (57014, 55P03) under OperationalError too, but those came from
    a server that answered on a connection that is still good: dropping the
    pool for them would log a lost connection that never was."""
    return (
        isinstance(exc, psycopg2.OperationalError | psycopg2.InterfaceError)
        and getattr(exc, "pgcode", None) is None
    )


def reports_read_only(conn: Any) -> bool:
    """Whether the server last told this connection it takes no writes."""
    try:
        return any(conn.info.parameter_status(name) == "on" for name in READ_ONLY_REPORTS)
    except psycopg2.Error:
        return True


def server_identity(conn: Any) -> str:
    """``address:port`` of the server behind ``conn`` as the server itself
    sees it: a forwarder or a DNS name that moved leads to another answer."""
    with conn.cursor() as cur:
        cur.execute(IDENTITY_SQL)
        addr, port = cur.fetchone()
    if addr is None:  # a Unix socket: the server knows no address
        addr = conn.info.host
        port = conn.info.port
    return f"{addr.split('/')[0]}:{port}"


def probe_servers(kwargs: dict[str, Any], timeout: float = 2.0) -> tuple[str, str]:
    """When no read-write session can be had: is a standby all there is?
    Returns (``database_read_only`` or ``database_unavailable``, detail)."""
    probe = {**kwargs, "target_session_attrs": "any", "connect_timeout": max(1, int(timeout))}
    try:
        conn = psycopg2.connect(**probe)
    except psycopg2.Error:
        return "database_unavailable", "no database server answers"
    try:
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute("SELECT pg_is_in_recovery(), current_setting('transaction_read_only')")
            recovering, read_only = cur.fetchone()
        where = server_identity(conn)
    except psycopg2.Error:
        return "database_unavailable", "no database server answers"
    finally:
        conn.close()
    if recovering or read_only == "on":
        return "database_read_only", f"only a read-only server answers ({where}, a standby)"
    return "database_unavailable", f"{where} answers but gave no read-write session"
