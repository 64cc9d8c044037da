"""A database that holds a lock forever, or stops answering altogether
(its backends frozen with SIGSTOP: the kernel still acknowledges every
byte, so libpq would wait forever): every request still gets a prompt JSON
answer, 503 where it needs the database, and the node is fine again once the
database is. Real `ksnode up`, real Postgres."""

from __future__ import annotations

import os
import signal
import threading
import time

import pytest
import requests

from shared.db.pool import BREAKER_SECONDS
from tests.conftest import admin_connection, create_database
from tests.support.fakes.telegram import BOT_TOKEN
from tests.support.keyshare_helpers import secp_key, share_hex, v1_get, v1_register
from tests.support.node_process import NodeProcess, database_env
from tests.support.processes import wait_until

QUERY_TIMEOUT = 2.0  # DB_QUERY_TIMEOUT_SECONDS: lock_timeout 1 s, cut after 4 s


@pytest.fixture(scope="module")
def node(pg_server, tmp_path_factory):
    dbname = create_database(pg_server)
    node = NodeProcess.build(
        tmp_path_factory.mktemp("stuck") / "var",
        database_env(pg_server, dbname),
        TELEGRAM_BOT_TOKEN=BOT_TOKEN,
        DB_QUERY_TIMEOUT_SECONDS=str(QUERY_TIMEOUT),
    ).start()
    node.dbname = dbname
    yield node
    assert node.stop() == 0


@pytest.fixture(scope="module")
def stored(node):
    user, key, share = "6161", secp_key(), share_hex()
    r = v1_register(node.url, user, key, share)
    assert r.status_code == 200, r.text
    return user, key, share


def timed_get(node: NodeProcess, user: str, key: str) -> tuple[int | str, float, dict]:
    started = time.monotonic()
    try:
        r = v1_get(node.url, user, key, timeout=30)
        return r.status_code, time.monotonic() - started, r.json()
    except requests.RequestException as exc:
        return type(exc).__name__, time.monotonic() - started, {}


def test_a_lock_held_forever_gets_a_prompt_503(node, pg_server, stored):
    user, key, share = stored
    conn = admin_connection(pg_server, node.dbname)
    conn.autocommit = False
    try:
        with conn.cursor() as cur:
            cur.execute('LOCK TABLE "2_key_shares" IN ACCESS EXCLUSIVE MODE')
        status, took, body = timed_get(node, user, key)
        print(f"v1 get behind a held lock: {status} in {took:.2f} s")
        assert status == 503 and body["code"] == "SERVICE_UNAVAILABLE", body
        assert took < QUERY_TIMEOUT + 1
    finally:
        conn.rollback()
        conn.close()
    status, _, body = timed_get(node, user, key)
    assert status == 200 and body["data"]["share"] == share


def test_a_frozen_database_gets_prompt_answers_and_the_node_recovers(node, pg_server, stored):
    user, key, share = stored
    admin = admin_connection(pg_server)
    try:
        with admin.cursor() as cur:
            cur.execute(
                "SELECT pid FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
                (node.dbname,),
            )
            backends = [row[0] for row in cur.fetchall()]
    finally:
        admin.close()
    assert backends
    results: list[tuple] = []
    probes: dict[str, tuple] = {}
    for pid in backends:
        os.kill(pid, signal.SIGSTOP)
    try:
        # More concurrent requests than the api has threads: none may hang.
        threads = [
            threading.Thread(target=lambda: results.append(timed_get(node, user, key)))
            for _ in range(12)
        ]
        for thread in threads:
            thread.start()
        time.sleep(0.5)
        for path in ("/status", "/health"):
            started = time.monotonic()
            r = requests.get(node.url + path, timeout=30)
            probes[path] = (r.status_code, time.monotonic() - started)
        for thread in threads:
            thread.join(60)
    finally:
        for pid in backends:
            os.kill(pid, signal.SIGCONT)
        resumed = time.monotonic()
    print(f"frozen database: gets {sorted((s, round(t, 1)) for s, t, _ in results)}; {probes}")
    assert len(results) == 12
    for status, took, _body in results:
        # Frozen connections are cut after QUERY_TIMEOUT + 2 s; requests that
        # then open a new connection (the server still accepts them) may pass.
        assert status in (200, 503), status
        assert took < 2 * (QUERY_TIMEOUT + 2) + 2, took
    assert any(status == 503 for status, _, _ in results)
    # A monitor hears back within its own few seconds.
    assert probes["/status"][0] == 200 and probes["/status"][1] < 8, probes
    assert probes["/health"][0] in (200, 503) and probes["/health"][1] < 8, probes
    assert any(status == 503 for status, _, _ in results)
    # After a cut the API fails at once for a few seconds (a breaker: queued
    # requests must not each wait out a deadline), then tries again.
    assert wait_until(lambda: timed_get(node, user, key)[0] == 200, 15)
    # Each API worker process has its own breaker, opened by its own cut
    # (all before the database resumed): once the last one has closed,
    # every request is served again, whichever worker takes it.
    time.sleep(max(0.0, resumed + BREAKER_SECONDS + 0.5 - time.monotonic()))
    for _ in range(6):
        status, _, body = timed_get(node, user, key)
        assert status == 200 and body["data"]["share"] == share, (status, body)
    assert "db.no_answer" in node.log_text()
