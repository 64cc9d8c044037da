"""The API's pool against a live database that is slow (a lock held by
another session) and one that stopped answering (its processes frozen with
SIGSTOP). A slow database is not an outage: its timeouts end the statement
on the server, the connection stays in the pool and nothing is said about
lost connections. A frozen one is: after a block is cut, the worker answers
at once for a few seconds instead of making each queued request wait out
its own deadline. test_stuck_database.py covers a real node end to end."""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from pathlib import Path

import psycopg2
import pytest

from shared.db.pool import BREAKER_SECONDS, CUT_MARGIN_SECONDS, Database
from tests.conftest import ApiServer, admin_connection, build_node_context
from tests.support.keyshare_helpers import secp_key, share_hex, v1_get, v1_register

QUERY_TIMEOUT = 2.0  # lock_timeout 1 s, statement_timeout 2 s, cut after 4 s


@pytest.fixture()
def pool(config):
    database = Database(config, query_timeout=QUERY_TIMEOUT)
    yield database
    database.close()


@pytest.fixture()
def locked(pg_server, dbname):
    """Another session holding the heartbeat table, as a migration or a
    manual transaction would."""
    conn = admin_connection(pg_server, dbname)
    conn.autocommit = False
    with conn.cursor() as cur:
        cur.execute("LOCK TABLE ksn_heartbeats IN ACCESS EXCLUSIVE MODE")
    yield conn
    conn.rollback()
    conn.close()


def backend_pid(pool: Database) -> int:
    with pool.cursor() as cur:
        cur.execute("SELECT pg_backend_pid()")
        return cur.fetchone()[0]


def test_a_lock_timeout_keeps_the_connection_and_says_nothing_of_a_lost_one(pool, locked, caplog):
    caplog.set_level(logging.INFO, logger="ksnode.db")
    before = backend_pid(pool)
    started = time.monotonic()
    with pytest.raises(psycopg2.OperationalError) as raised:
        with pool.cursor() as cur:
            cur.execute("SELECT count(*) FROM ksn_heartbeats")
    took = time.monotonic() - started
    assert raised.value.pgcode == "55P03" and took < QUERY_TIMEOUT, (raised.value, took)
    # The server answered: the same connection serves the next block.
    assert backend_pid(pool) == before
    events = [getattr(record, "event", None) for record in caplog.records]
    assert "db.failover_sign" not in events and "db.no_answer" not in events, events


def waiting_statements(pg_server, dbname: str) -> list[str]:
    """Statements of the database waiting on a lock now."""
    conn = admin_connection(pg_server)
    try:
        with conn.cursor() as cur:
            cur.execute(
                "SELECT query FROM pg_stat_activity WHERE datname = %s AND wait_event_type ="
                " 'Lock' AND pid <> pg_backend_pid()",
                (dbname,),
            )
            return [row[0] for row in cur.fetchall()]
    finally:
        conn.close()


def test_a_short_block_on_a_slow_database_ends_on_the_server_not_by_a_cut(
    config, locked, pg_server, dbname, caplog
):
    """A probe's 2 s block (/health, /status) behind a lock, with the
    pool's own limits far longer: the server ends the statement within the
    block, so nothing of it is left waiting once the caller has its answer,
    the worker is not put in the frozen-database state, and the pool's
    limits are back for the next block."""
    caplog.set_level(logging.INFO, logger="ksnode.db")
    pool = Database(config, query_timeout=10.0)  # the default: lock_timeout 5 s
    try:
        started = time.monotonic()
        with pytest.raises(psycopg2.OperationalError) as raised:
            with pool.cursor(timeout=2.0) as cur:
                cur.execute("SELECT count(*) FROM ksn_heartbeats")
        took = time.monotonic() - started
        left = waiting_statements(pg_server, dbname)
        assert raised.value.pgcode == "55P03" and took < 2.0, (raised.value, took)
        assert left == []
        events = [getattr(record, "event", None) for record in caplog.records]
        assert "db.no_answer" not in events, events
        with pool.cursor() as cur:  # not refused: no breaker; the pool's limits again
            cur.execute("SHOW statement_timeout")
            statement = cur.fetchone()[0]
            cur.execute("SHOW lock_timeout")
            lock = cur.fetchone()[0]
        assert (statement, lock) == ("10s", "5s")
    finally:
        pool.close()


def frozen_pids(pg_server, dbname: str) -> list[int]:
    """The postmaster and the database's backends: all frozen, the host
    neither answers on its connections nor takes new ones (a paused VM)."""
    conn = admin_connection(pg_server)
    try:
        with conn.cursor() as cur:
            cur.execute("SHOW data_directory")
            data = Path(cur.fetchone()[0])
            cur.execute(
                "SELECT pid FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
                (dbname,),
            )
            backends = [row[0] for row in cur.fetchall()]
    finally:
        conn.close()
    return [int((data / "postmaster.pid").read_text().split()[0]), *backends]


def timed_gets(api: ApiServer, user: str, key: str, count: int) -> list[tuple[int, float]]:
    """``count`` share reads at once; (status, seconds) of each."""
    results: list[tuple[int, float]] = []

    def one() -> None:
        started = time.monotonic()
        r = v1_get(api.url, user, key, timeout=120)
        assert r.headers["Content-Type"].startswith("application/json")
        results.append((r.status_code, time.monotonic() - started))

    threads = [threading.Thread(target=one) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(150)
    return results


def test_a_frozen_database_holds_a_worker_once_not_once_per_queued_request(
    config, cipher, pg_server, dbname
):
    """The first request caught by the freeze waits out its deadline; those
    queued behind it in the worker (one request at a time, gate.py) answer
    503 at once, and so do those that would each wait for a new connection
    to time out. Before: 4 s, 9 s, 14 s ... one deadline per queued request."""
    from services.api.app import create_app

    pool = Database(config, query_timeout=QUERY_TIMEOUT)
    api = ApiServer(create_app(build_node_context(config, pool, cipher))).start()
    try:
        user, key, share = "4242", secp_key(), share_hex()
        assert v1_register(api.url, user, key, share).status_code == 200
        pids = frozen_pids(pg_server, dbname)
        for pid in pids:
            os.kill(pid, signal.SIGSTOP)
        try:
            # a pooled connection meets the freeze (cut after 4 s)
            first = timed_gets(api, user, key, 6)
            time.sleep(BREAKER_SECONDS + 0.5)
            # the pool is empty now: each would wait for a new connection
            second = timed_gets(api, user, key, 6)
        finally:
            for pid in reversed(pids):
                os.kill(pid, signal.SIGCONT)
        print(f"frozen: {sorted(first)}; then {sorted(second)}")
        assert [status for status, _ in first + second] == [503] * 12
        assert max(took for _, took in first) < QUERY_TIMEOUT + CUT_MARGIN_SECONDS + 1.5
        assert max(took for _, took in second) < 5  # one connect attempt of 2 s
        # Back by itself once the database answers.
        deadline = time.monotonic() + 15
        while v1_get(api.url, user, key).status_code != 200:
            assert time.monotonic() < deadline
            time.sleep(0.5)
    finally:
        api.stop()
        pool.close()
