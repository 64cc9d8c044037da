"""/health tells the truth: ok, degraded (200) with each reason named in a
machine-readable form, down (503) without a database; /metrics carries the
same as gauges. Every reason is reached here through the real tables."""

from __future__ import annotations

import dataclasses

import pytest

from services.api.ops.health import REFUSED_RECORD_DAYS
from shared.audit.records import Record
from shared.db.embedded import free_port
from shared.db.pool import Database
from shared.store import audit, backup_checks, drills, heartbeats
from tests.conftest import ApiServer, build_node_context
from tests.support.audit_forgery import insert_staged
from tests.support.ops import OPS_HEADERS
from tests.support.processes import wait_until

PROGRAMS = ("api", "backup_worker", "reporter")


@pytest.fixture()
def healthy(db, config):
    """A node with nothing to report: fresh beats, a fresh good dump, a
    passed self-check, no failed drill."""
    node_id = config.effective_node_id
    with db.transaction() as cur:
        cur.execute('DELETE FROM "2_pg_dumps"')
        cur.execute("DELETE FROM ksn_backup_checks")
        cur.execute("DELETE FROM ksn_backup_drills")
        cur.execute("DELETE FROM ksn_node_heartbeats")
        cur.execute(f"DELETE FROM {audit.AUDIT} WHERE event = %s", (audit.STAGED_REFUSED_EVENT,))
        for program in PROGRAMS:
            heartbeats.start(cur, node_id, program)
        heartbeats.beat(cur, node_id, "backup_worker", {"tools_error": None})
        cur.execute(
            'INSERT INTO "2_pg_dumps" (dump_id, status, dump_path, meta) VALUES'
            " (gen_random_uuid(), 'COMPLETED', '/x.dump', '{\"dump_size\": 1000}')"
        )
        backup_checks.record(cur, True, None)
    return db


def reasons(api) -> tuple[int, dict]:
    r = api.get("/health", headers=OPS_HEADERS)
    return r.status_code, r.json()


def gauge(api, reason: str) -> str:
    for line in api.get("/metrics", headers=OPS_HEADERS).text.splitlines():
        if line.startswith(f'ksnode_health_reason{{reason="{reason}"}}'):
            return line.split()[-1]
    raise AssertionError(f"no gauge for {reason}")


def assert_only(api, reason: str, fragment: str) -> dict:
    status, body = reasons(api)
    assert status == 200 and body["status"] == "degraded", body
    assert [x["reason"] for x in body["reasons"]] == [reason], body["reasons"]
    assert fragment in str(body["reasons"][0])
    assert gauge(api, reason) == "1.0"
    return body


def test_healthy_node_is_ok(api, healthy):
    status, body = reasons(api)
    assert status == 200 and body["status"] == "ok" and body["reasons"] == [], body
    assert gauge(api, "backup_failed") == "0.0"
    assert "ksnode_health_status 0.0" in api.get("/metrics", headers=OPS_HEADERS).text


def test_last_backup_failed(api, healthy):
    with healthy.cursor() as cur:
        cur.execute(
            'INSERT INTO "2_pg_dumps" (dump_id, status, meta) VALUES'
            " (gen_random_uuid(), 'FAILED', '{\"error\": \"pg_dump failed: disk full\"}')"
        )
    assert_only(api, "backup_failed", "disk full")


def test_backup_overdue(api, healthy, config):
    with healthy.cursor() as cur:
        cur.execute(
            "UPDATE \"2_pg_dumps\" SET created_at = now() - %s * interval '1 second'",
            (config.backup_interval_seconds + config.backup_overdue_grace_seconds + 60,),
        )
    body = assert_only(api, "backup_overdue", "no completed backup")
    assert body["reasons"][0]["last_completed_at"] is not None


def test_backup_tools_unusable(api, healthy):
    with healthy.cursor() as cur:
        heartbeats.beat(
            cur,
            healthy.config.effective_node_id,
            "backup_worker",
            {"tools_error": "cannot run /x/pg_dump"},
        )
    assert_only(api, "backup_tools_unusable", "/x/pg_dump")
    assert "ksnode_backup_tools_usable 0.0" in api.get("/metrics", headers=OPS_HEADERS).text


def test_selfcheck_failed(api, healthy):
    with healthy.cursor() as cur:
        backup_checks.record(cur, False, "restored data mismatch")
    assert_only(api, "selfcheck_failed", "mismatch")


def test_heartbeat_stale(api, healthy):
    with healthy.cursor() as cur:
        cur.execute(
            "UPDATE ksn_node_heartbeats SET beat_at = now() - interval '1 hour'"
            " WHERE program = 'backup_worker'"
        )
    body = assert_only(api, "heartbeat_stale", "backup_worker")
    assert body["reasons"][0]["program"] == "backup_worker"


def test_dump_dir_low_space(api, healthy):
    with healthy.cursor() as cur:
        cur.execute("""UPDATE "2_pg_dumps" SET meta = '{"dump_size": 1000000000000000000}'""")
    assert_only(api, "dump_dir_low_space", "bytes free")


def test_drill_failed(api, healthy):
    with healthy.cursor() as cur:
        drills.record(cur, None, False, "2_key_shares: 9 rows, 10 recorded at dump time", 1.0)
    assert_only(api, "drill_failed", "2_key_shares")
    assert "ksnode_last_drill_ok 0.0" in api.get("/metrics", headers=OPS_HEADERS).text


def refused_in_chain(db) -> int:
    with db.cursor() as cur:
        return audit.refused_since(cur, REFUSED_RECORD_DAYS)[0]


def test_forged_staged_audit_record(api, healthy):
    # What someone holding only the database can write; the API's trail takes
    # staged rows every 0.5 s.
    insert_staged(healthy, Record("keyshare.v1.register", "ok", request_id="forged-1"))
    assert wait_until(lambda: refused_in_chain(healthy), timeout=10) == 1
    body = assert_only(api, "audit_staged_refused", "did not carry this node's MAC")
    assert body["reasons"][0]["count"] == 1 and body["reasons"][0]["newest_at"].endswith("Z")
    # An event, not a state: a week after the last one the reason is gone.
    with healthy.cursor() as cur:
        cur.execute(
            f"UPDATE {audit.AUDIT} SET at = now() - make_interval(days => %s + 1) WHERE event = %s",
            (REFUSED_RECORD_DAYS, audit.STAGED_REFUSED_EVENT),
        )
    status, body = reasons(api)
    assert status == 200 and body["status"] == "ok", body
    assert gauge(api, "audit_staged_refused") == "0.0"


def test_no_database_is_down_503(config, db, cipher):
    from services.api.app import create_app

    ctx = build_node_context(config, db, cipher)
    dead = Database(dataclasses.replace(config, db_port=free_port()), acquire_timeout=2)
    server = ApiServer(create_app(dataclasses.replace(ctx, db=dead))).start()
    try:
        r = server.get("/health", headers=OPS_HEADERS)
        assert r.status_code == 503
        body = r.json()
        assert body["status"] == "down" and body["db"]["connected"] is False
        assert [x["reason"] for x in body["reasons"]] == ["database_unavailable"]
        metrics = server.get("/metrics", headers=OPS_HEADERS).text
        assert "ksnode_health_status 2.0" in metrics
        assert 'ksnode_health_reason{reason="database_unavailable"} 1.0' in metrics
    finally:
        server.stop()
        dead.close()
