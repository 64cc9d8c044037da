"""Two real nodes (`ksnode up`, real supervisord, separate homes and dump
folders) on one Postgres database with one secret: every point of "several
nodes, one database" (docs/operator.md section 11)."""

from __future__ import annotations

import re
import threading
import time
from pathlib import Path

import psycopg2
import pytest
import requests

from shared.store.tables import JOBS, PG_DUMPS, SERVER_KEYPAIRS
from tests.conftest import create_database
from tests.support.fakes.telegram import BOT_TOKEN, bearer
from tests.support.keyshare_helpers import new_user_id, secp_key, share_hex
from tests.support.node_process import NodeProcess, database_env
from tests.support.ops import OPS_HEADERS
from tests.support.processes import wait_until

pytestmark = pytest.mark.cluster

ADMIN = "test-admin-password"
MIN_KEEP = 2


@pytest.fixture(scope="module")
def cluster(pg_server, tmp_path_factory):
    root = tmp_path_factory.mktemp("cluster")
    dbname = create_database(pg_server)
    db_env = database_env(pg_server, dbname)
    secret = root / "shared_secret.txt"
    nodes = [
        NodeProcess.build(
            root / name / "var",
            db_env,
            secret,
            DUMP_DIR=str(root / name / "dump"),
            TELEGRAM_BOT_TOKEN=BOT_TOKEN,
            ADMIN_PASSWORD=ADMIN,
            BACKUP_RETENTION_DAYS="0",  # every dump is old: only BACKUP_MIN_KEEP guards
            BACKUP_MIN_KEEP=str(MIN_KEEP),
            BACKUP_POLL_SECONDS="0.2",
            API_WORKERS="1",
        )
        for name in ("a", "b")
    ]
    for node in nodes:  # at the same moment, on an empty database
        node.launch()
    try:
        for node in nodes:
            node.wait_ready(90)
    except AssertionError:
        for node in nodes:
            node.stop()
            print(node.up_output()[-3000:])
        raise
    conn = psycopg2.connect(
        host=pg_server.host,
        port=pg_server.port,
        user="postgres",
        password=pg_server.password,
        dbname=dbname,
    )
    conn.autocommit = True
    yield nodes[0], nodes[1], conn
    conn.close()
    codes = [node.stop() for node in nodes]
    assert codes == [0, 0]


def query(conn, sql: str, args=()) -> list[tuple]:
    with conn.cursor() as cur:
        cur.execute(sql, args)
        return cur.fetchall() if cur.description else []


def post(node: NodeProcess, path: str, body: dict, headers=None) -> requests.Response:
    return requests.post(node.url + path, json=body, headers=headers, timeout=120)


def dump_dir(node: NodeProcess) -> Path:
    return Path(node.env["DUMP_DIR"])


def test_nodes_started_at_once_migrate_once_and_share_one_keypair(cluster):
    a, b, conn = cluster
    names = [row[0] for row in query(conn, "SELECT name FROM ksn_schema_migrations")]
    assert len(names) == len(set(names)) and "0004_cluster_nodes.sql" in names
    assert query(conn, f"SELECT count(*) FROM {SERVER_KEYPAIRS}") == [(1,)]
    assert a.status()["ks_node_public_key"] == b.status()["ks_node_public_key"]
    for node in (a, b):
        assert "Traceback" not in node.up_output()


def test_one_key_registered_through_both_nodes_at_once_one_wins(cluster):
    a, b, _ = cluster
    key = secp_key()
    barrier = threading.Barrier(20)
    answers: list[requests.Response] = []

    def register(node):
        body = {
            "auth_type": "telegram",
            "curve_type": "secp256k1",
            "public_key": key,
            "share": share_hex(),
        }
        headers = bearer(new_user_id())
        barrier.wait(10)
        answers.append(post(node, "/keyshare/v1/register", body, headers))

    threads = [threading.Thread(target=register, args=((a, b)[i % 2],)) for i in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert sorted(r.status_code for r in answers) == [200] + [409] * 19
    assert {r.json()["code"] for r in answers if r.status_code == 409} == {"DUPLICATE_PUBLIC_KEY"}


def test_shares_written_through_one_node_read_identically_through_the_other(cluster):
    a, b, _ = cluster
    for writer, reader in ((a, b), (b, a)):
        for _ in range(10):
            user, key, share = new_user_id(), secp_key(), share_hex()
            body = {"auth_type": "telegram", "curve_type": "secp256k1", "public_key": key}
            r = post(writer, "/keyshare/v1/register", {**body, "share": share}, bearer(user))
            assert r.status_code == 200, r.text
            got = post(
                reader, "/keyshare/v1/", {"auth_type": "telegram", "public_key": key}, bearer(user)
            )
            assert got.status_code == 200 and got.json()["data"]["share"] == share


def test_the_daily_dump_is_taken_once_for_the_cluster(cluster):
    _, _, conn = cluster
    sql = f"SELECT status, count(*) FROM {PG_DUMPS} GROUP BY status"
    assert wait_until(lambda: dict(query(conn, sql)).get("COMPLETED"), 60)
    time.sleep(2)  # both workers have looked again (BACKUP_POLL_SECONDS=0.2)
    assert dict(query(conn, sql)) == {"COMPLETED": 1}


def test_a_manual_backup_runs_on_the_worker_of_the_node_asked(cluster):
    a, b, conn = cluster
    answers: list[tuple[NodeProcess, requests.Response]] = []

    def backup(node):
        answers.append((node, post(node, "/pg_dump/v1/backup", {"password": ADMIN})))

    threads = [threading.Thread(target=backup, args=(node,)) for node in (a, b, a, b, a, b)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(180)
    assert len(answers) == 6
    for node, response in answers:
        assert response.status_code == 200, response.text
        path = Path(response.json()["data"]["dumpPath"])
        assert path.parent == dump_dir(node)
    pids = {node.pids()["backup_worker"]: node for node in (a, b)}
    rows = query(conn, f"SELECT node_id, claimed_by FROM {JOBS} WHERE kind = 'backup'")
    assert len(rows) == 6
    for node_id, claimed_by in rows:
        node = pids[int(claimed_by.rsplit(":", 1)[1])]
        assert node_id == health(node)["node_id"]


def newest_dump_of(conn, node_id: str) -> str:
    """The path of the newest COMPLETED dump the node ``node_id`` wrote."""
    (path,) = query(
        conn,
        f"SELECT dump_path FROM {PG_DUMPS} WHERE status = 'COMPLETED' AND meta->>'node_id' = %s"
        " ORDER BY created_at DESC LIMIT 1",
        (node_id,),
    )[0]
    return path


def health(node: NodeProcess) -> dict:
    return requests.get(node.url + "/health", timeout=10, headers=OPS_HEADERS).json()


def test_retention_marks_deleted_only_what_the_holding_node_deleted(cluster):
    a, b, conn = cluster
    rows = query(
        conn,
        f"SELECT status, dump_path, meta->>'node_id' FROM {PG_DUMPS} WHERE dump_path IS NOT NULL",
    )
    assert len(rows) == 7  # the daily dump and six manual ones
    for status, path, _holder in rows:
        assert Path(path).is_file() == (status == "COMPLETED"), (status, path)
    for node in (a, b):
        held = [r for r in rows if r[2] == health(node)["node_id"] and r[0] == "COMPLETED"]
        assert len(held) == MIN_KEEP  # the newest dumps it really holds
        assert len(list(dump_dir(node).glob("*.dump"))) == MIN_KEEP


def test_restore_of_a_dump_in_another_nodes_folder_is_refused_at_once(cluster):
    a, b, conn = cluster
    b_id = health(b)["node_id"]
    path = newest_dump_of(conn, b_id)
    started = time.monotonic()
    r = post(a, "/pg_dump/v1/restore", {"password": ADMIN, "dump_path": path})
    assert time.monotonic() - started < 10
    assert r.status_code == 400
    assert r.json()["code"] == "INVALID_DUMP_PATH"
    assert b_id in r.json()["msg"]
    # On separate hosts the file is not even there: the same answer (a path
    # outside DUMP_DIR is never looked at), still named, still at once.
    query(
        conn,
        f"INSERT INTO {PG_DUMPS} (dump_id, status, dump_path, meta)"
        " VALUES (gen_random_uuid(), 'COMPLETED', '/elsewhere/dump/x.dump',"
        ' \'{"node_id": "other-host:/srv/ksnode"}\')',
    )
    r = post(a, "/pg_dump/v1/restore", {"password": ADMIN, "dump_path": "/elsewhere/dump/x.dump"})
    assert r.status_code == 400 and r.json()["code"] == "INVALID_DUMP_PATH"
    assert "other-host:/srv/ksnode" in r.json()["msg"]
    query(conn, f"DELETE FROM {PG_DUMPS} WHERE dump_path = '/elsewhere/dump/x.dump'")


def test_a_restore_asked_of_a_node_runs_on_its_worker(cluster):
    a, _, conn = cluster
    a_id = health(a)["node_id"]
    path = newest_dump_of(conn, a_id)
    r = post(a, "/pg_dump/v1/restore", {"password": ADMIN, "dump_path": path})
    assert r.status_code == 200, r.text
    assert query(conn, f"SELECT node_id FROM {JOBS} WHERE kind = 'restore'") == [(a_id,)]


def test_health_and_metrics_report_each_nodes_own_programs(cluster):
    a, b, _ = cluster
    ids = {health(a)["node_id"], health(b)["node_id"]}
    assert len(ids) == 2
    for node in (a, b):
        body = health(node)
        pids = node.pids()
        assert {p: body["programs"][p]["pid"] for p in pids} == pids
        metrics = requests.get(node.url + "/metrics", timeout=10, headers=OPS_HEADERS).text
        ages = re.findall(r'ksnode_heartbeat_age_seconds\{node_id="([^"]+)"', metrics)
        assert set(ages) == {body["node_id"]}
    # B's background programs stop: B's /health says so, A's stays healthy.
    stopped = b.ksnode("ctl", "stop", "backup_worker", "reporter", timeout=150)
    assert "stopped" in stopped.stdout, stopped.stdout + stopped.stderr
    try:

        def b_degraded():
            body = health(b)
            programs = body["programs"]
            return not programs["backup_worker"]["running"] and not programs["reporter"]["running"]

        # At once, not when the heartbeats have aged out (30 s): a clean stop says so.
        assert wait_until(b_degraded, 5, interval=0.5)
        # B still serves: degraded, 200, each stopped program named (issue 11: 503 = no database)
        r = requests.get(b.url + "/health", timeout=10, headers=OPS_HEADERS)
        assert r.status_code == 200 and r.json()["status"] == "degraded"
        stale = {x.get("program") for x in r.json()["reasons"] if x["reason"] == "heartbeat_stale"}
        assert stale == {"backup_worker", "reporter"}
        details = [x["detail"] for x in r.json()["reasons"] if x["reason"] == "heartbeat_stale"]
        assert all(d.startswith("stopped at ") for d in details), details
        r = requests.get(a.url + "/health", timeout=10)
        assert r.status_code == 200
        assert not [x for x in r.json()["reasons"] if x["reason"] == "heartbeat_stale"]
    finally:
        b.ksnode("ctl", "start", "backup_worker", "reporter", timeout=60)

    def b_running_again():
        programs = health(b)["programs"]
        return all(programs[p]["running"] for p in ("backup_worker", "reporter"))

    assert wait_until(b_running_again, 30, interval=0.5)  # a start clears the stop
