"""GET /, /status and /health over real HTTP."""

import re

from shared.store import backup_checks
from shared.store.tables import PG_DUMPS
from tests.support.ops import OPS_HEADERS
from tests.support.reference import STATUS_FIELDS

ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


def test_root_answers_plain_ok(api):
    r = api.get("/")
    assert r.status_code == 200
    assert r.content == b"Ok"
    assert r.headers["Content-Type"] == "text/html; charset=utf-8"


def test_status_has_exactly_the_seven_reference_fields(api):
    body = api.get("/status").json()
    assert tuple(body) == STATUS_FIELDS
    assert body["is_db_connected"] is True
    assert isinstance(body["is_db_backup_checked"], bool)
    assert re.fullmatch(r"[0-9a-f]{64}", body["ks_node_public_key"])
    assert ISO.match(body["launch_time"])
    assert isinstance(body["version"], str)


def test_status_backup_fields_follow_the_database(api, db):
    with db.transaction() as cur:
        cur.execute(f"DELETE FROM {PG_DUMPS}")
        cur.execute("DELETE FROM ksn_backup_checks")
    body = api.get("/status").json()
    assert body["is_db_backup_checked"] is False
    assert body["latest_backup_time"] is None
    with db.transaction() as cur:
        backup_checks.record(cur, True, None)
        cur.execute(
            f"INSERT INTO {PG_DUMPS} (dump_id, status, created_at) VALUES"
            " (gen_random_uuid(), 'COMPLETED', '2026-01-28T03:00:00.120Z'),"
            " (gen_random_uuid(), 'FAILED', '2026-01-29T03:00:00Z')"
        )
    body = api.get("/status").json()
    assert body["is_db_backup_checked"] is True
    assert body["latest_backup_time"] == "2026-01-28T03:00:00.120Z"
    with db.transaction() as cur:
        backup_checks.record(cur, False, "restore mismatch")
    assert api.get("/status").json()["is_db_backup_checked"] is False


def test_unknown_route_is_json_404(api):
    r = api.post("/nope", json={})
    assert r.status_code == 404
    assert r.json() == {"success": False, "code": "NOT_FOUND", "msg": "Cannot POST /nope"}


def test_wrong_method_is_json_405(api):
    r = api.request("DELETE", "/status")
    assert r.status_code == 405
    assert r.json()["code"] == "METHOD_NOT_ALLOWED"
    assert set(r.headers["Allow"].split(", ")) == {"GET", "HEAD", "OPTIONS"}
    r = api.get("/keyshare/v1/register")
    assert r.status_code == 405
    assert set(r.headers["Allow"].split(", ")) == {"POST", "OPTIONS"}


def test_security_and_cors_headers_on_every_response(api):
    for r in (api.get("/"), api.get("/status"), api.get("/nope")):
        assert r.headers["Access-Control-Allow-Origin"] == "*"
        assert r.headers["X-Frame-Options"] == "SAMEORIGIN"
        assert r.headers["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains"
        assert "X-Powered-By" not in r.headers


def test_preflight_is_204_with_echoed_headers(api):
    r = api.request(
        "OPTIONS",
        "/keyshare/v2/",
        headers={
            "Origin": "https://wallet.example",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization,content-type",
        },
    )
    assert r.status_code == 204
    assert r.content == b""
    assert r.headers["Access-Control-Allow-Methods"] == "GET,HEAD,PUT,PATCH,POST,DELETE"
    assert r.headers["Access-Control-Allow-Headers"] == "authorization,content-type"
    assert r.headers["Vary"] == "Access-Control-Request-Headers"
    assert r.headers["Content-Security-Policy"].startswith("default-src 'self'")
    assert "Content-Type" not in r.headers  # an empty 204, as the reference's cors layer


def test_health_reports_each_program(api, db, config):
    from shared.store import heartbeats

    with db.transaction() as cur:
        for program in ("api", "backup_worker", "reporter"):
            heartbeats.start(cur, config.effective_node_id, program)
    r = api.get("/health", headers=OPS_HEADERS)
    assert r.status_code == 200
    body = r.json()
    assert body["db"]["connected"] is True
    assert set(body["programs"]) == {"api", "backup_worker", "reporter"}
    with db.transaction() as cur:
        cur.execute(
            "UPDATE ksn_node_heartbeats SET beat_at = now() - interval '1 hour'"
            " WHERE program = 'reporter'"
        )
    r = api.get("/health", headers=OPS_HEADERS)
    # a stale heartbeat needs attention but the node serves: degraded, 200 (issue 11)
    assert r.status_code == 200 and r.json()["status"] == "degraded"
    assert r.json()["programs"]["reporter"]["running"] is False
    stale = [x for x in r.json()["reasons"] if x["reason"] == "heartbeat_stale"]
    assert [x["program"] for x in stale] == ["reporter"]


def test_status_database_part_is_cached_for_the_configured_time(start_api, db):
    server = start_api(status_cache_seconds=30)
    with db.transaction() as cur:
        cur.execute("DELETE FROM ksn_backup_checks")
    assert server.get("/status").json()["is_db_backup_checked"] is False
    with db.transaction() as cur:
        backup_checks.record(cur, True, None)
    assert server.get("/status").json()["is_db_backup_checked"] is False  # still the cached answer


def test_anonymous_health_is_cached_and_the_operators_is_not(start_api, db, config):
    """Anonymous /health is assessed at most once per STATUS_CACHE_SECONDS (it
    queries, and waits for probes while the database is down); the operator's
    token always gets a fresh assessment."""
    from shared.store import heartbeats

    server = start_api(status_cache_seconds=30)
    with db.transaction() as cur:
        for program in ("api", "backup_worker", "reporter"):
            heartbeats.start(cur, config.effective_node_id, program)
    first = server.get("/health").json()
    assert "heartbeat_stale" not in {r["reason"] for r in first["reasons"]}
    with db.transaction() as cur:
        cur.execute("DELETE FROM ksn_node_heartbeats WHERE program = 'reporter'")
    operator = server.get("/health", headers=OPS_HEADERS).json()
    assert operator["programs"]["reporter"]["running"] is False  # fresh
    assert server.get("/health").json() == first  # the cached anonymous answer
    with db.transaction() as cur:
        heartbeats.start(cur, config.effective_node_id, "reporter")


def test_paths_match_case_insensitively_and_with_trailing_slash(api):
    for path in ("/status", "/status/", "/STATUS", "/Status/"):
        assert api.get(path).json()["is_db_connected"] is True, path
    r = api.post("/KEYSHARE/V2/CHECK/", json={})
    assert r.status_code == 400 and r.json()["code"] == "INVALID_REQUEST"
