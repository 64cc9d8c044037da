"""Anonymous callers get the reference's answers, not the host's details
(issue 22 point 3). Every request comes through a trusted proxy hop from
loopback (TRUST_PROXY_HOPS=1, X-Forwarded-For), as behind the recommended
reverse proxy: the peer being loopback must not count as a credential."""

from __future__ import annotations

import os
import socket

import pytest
from prometheus_client.parser import text_string_to_metric_families

from shared.config import Secret
from shared.store import heartbeats
from tests.support.ops import OPS_HEADERS, OPS_TOKEN

PROXIED = {"X-Forwarded-For": "203.0.113.7"}
WRONG = [
    {"Authorization": "Bearer not-the-ops-token-at-all"},
    {"Authorization": f"Bearer {OPS_TOKEN}x"},
    {"Authorization": f"Basic {OPS_TOKEN}"},
    {"Authorization": OPS_TOKEN},
    {"Authorization": "Bearer "},
]
FULL_META = {
    "dump_size": 5,
    "dump_duration": 0.5,
    "sha256": "ab" * 32,
    "verified": True,
    "node_id": "secret-host:/srv/secret-home",
    "tables": {"2_key_shares": {"rows": 4242, "checksum": "c0ffee"}},
    "reason": "pre-restore safety dump",
}
ADMIN = "test-admin-password"
PG_DUMP_ERROR = (
    'pg_dump failed: pg_dump: error: connection to server at "secret-host" (10.9.8.7),'
    ' port 5433 failed: FATAL: password authentication failed for user "ks_admin"'
)


@pytest.fixture(scope="module")
def seeded(db, config):
    """Beats with pids, a dump row with every meta key ours writes, a failed one."""
    import json

    with db.transaction() as cur:
        cur.execute('DELETE FROM "2_pg_dumps"')
        for program in ("api", "backup_worker", "reporter"):
            heartbeats.start(cur, config.effective_node_id, program)
        cur.execute(
            'INSERT INTO "2_pg_dumps" (dump_id, status, dump_path, meta, created_at) VALUES'
            " (gen_random_uuid(), 'COMPLETED', '/d/a.dump', %s, now()),"
            " (gen_random_uuid(), 'FAILED', NULL, '{\"error\": \"boom\"}', now() - interval '1 day'),"
            " (gen_random_uuid(), 'FAILED', NULL, %s, now() - interval '2 days')",
            (json.dumps(FULL_META), json.dumps({"error": PG_DUMP_ERROR})),
        )
        cur.execute(
            "UPDATE ksn_node_heartbeats SET beat_at = now() - interval '1 hour'"
            " WHERE program = 'reporter'"
        )  # a degraded node: reasons whose details name a program
        cur.execute("SELECT pid FROM ksn_node_heartbeats")
        pids = {row[0] for row in cur.fetchall()}
    return pids


@pytest.fixture(scope="module")
def proxied(start_api):
    return start_api(trust_proxy_hops=1)


@pytest.fixture(scope="module")
def tokenless(start_api):
    return start_api(trust_proxy_hops=1, ops_token=Secret(""))


def host_details(config, pids: set[int]) -> list[str]:
    """Strings that would tell an anonymous caller about the host."""
    return [
        socket.gethostname(),
        str(config.home),
        str(config.effective_log_dir),
        config.effective_node_id,
        "secret-host",
        *(f"{pid}" for pid in pids | {os.getpid()}),
    ]


def assert_reveals_nothing(text: str, config, pids: set[int]) -> None:
    for detail in host_details(config, pids):
        assert detail not in text, (detail, text[:2000])


def test_anonymous_health_is_status_and_reason_names(proxied, config, seeded):
    for headers in [{}, *WRONG]:
        r = proxied.get("/health", headers={**PROXIED, **headers})
        assert r.status_code == 200
        body = r.json()
        assert body == {"status": "degraded", "reasons": [{"reason": "heartbeat_stale"}]}, body
        assert_reveals_nothing(r.text, config, seeded)


def test_operator_health_has_the_details(proxied, config, seeded):
    r = proxied.get("/health", headers={**PROXIED, **OPS_HEADERS})
    assert r.status_code == 200
    body = r.json()
    assert body["node_id"] == config.effective_node_id
    assert body["disk"]["KSNODE_HOME"]["path"] == str(config.home)
    assert {info["pid"] for info in body["programs"].values()} == seeded
    stale = [x for x in body["reasons"] if x["reason"] == "heartbeat_stale"]
    assert [x["program"] for x in stale] == ["reporter"]


def metric_names(text: str) -> set[str]:
    return {family.name for family in text_string_to_metric_families(text)}


def test_anonymous_metrics_are_refused_when_a_token_is_set(proxied, config, seeded):
    for headers in [{}, *WRONG]:
        r = proxied.get("/metrics", headers={**PROXIED, **headers})
        assert r.status_code == 401, r.text
        assert r.json()["code"] == "UNAUTHORIZED"
        assert OPS_TOKEN not in r.text
        assert_reveals_nothing(r.text, config, seeded)


def test_operator_metrics_are_complete(proxied, config, seeded):
    r = proxied.get("/metrics", headers={**PROXIED, **OPS_HEADERS})
    assert r.status_code == 200
    assert "ksnode_key_shares" in metric_names(r.text)
    assert f'node_id="{config.effective_node_id}"' in r.text
    assert f'pid="{os.getpid()}"' in r.text


def test_without_a_token_anonymous_metrics_carry_status_only(tokenless, config, seeded):
    for headers in [{}, OPS_HEADERS]:  # no token configured: none is accepted
        r = tokenless.get("/metrics", headers={**PROXIED, **headers})
        assert r.status_code == 200
        assert r.headers["Content-Type"].startswith("text/plain")
        assert metric_names(r.text) == {
            "ksnode_db_up",
            "ksnode_health_status",
            "ksnode_health_reason",
        }
        assert 'ksnode_health_reason{reason="heartbeat_stale"} 1.0' in r.text
        assert "ksnode_health_status 1.0" in r.text
        assert_reveals_nothing(r.text, config, seeded)
        health = tokenless.get("/health", headers={**PROXIED, **headers}).json()
        assert set(health) == {"status", "reasons"}


def history(server, body: dict | None = None, headers: dict | None = None) -> list[dict]:
    r = server.post(
        "/pg_dump/v1/get_backup_history", json=body, headers={**PROXIED, **(headers or {})}
    )
    assert r.status_code == 200, r.text
    return r.json()["data"]


def test_anonymous_history_carries_the_seeds_fields_only(proxied, config, seeded):
    for body, headers in [
        (None, {}),
        ({"password": "wrong-password"}, {}),
        ({"password": ""}, {}),
        ({"password": 12}, {}),
        ({}, WRONG[0]),
    ]:
        data = history(proxied, body, headers)
        assert [row["meta"] for row in data] == [
            {"dump_size": 5, "dump_duration": 0.5},
            {"error": "boom"},
            {"error": "pg_dump failed"},
        ]
        assert "ks_admin" not in str(data) and "5433" not in str(data)
        assert list(data[0]) == [
            "dump_id",
            "status",
            "dump_path",
            "meta",
            "created_at",
            "updated_at",
        ]
        assert "4242" not in str(data)
        assert_reveals_nothing(str(data), config, seeded)


def test_admin_password_or_token_gets_the_full_history(proxied, seeded):
    for body, headers in [({"password": ADMIN}, {}), ({"days": 7}, OPS_HEADERS)]:
        data = history(proxied, body, headers)
        assert data[0]["meta"] == FULL_META
        assert data[1]["meta"] == {"error": "boom"}
        assert data[2]["meta"] == {"error": PG_DUMP_ERROR}


def test_request_ids_name_no_process(proxied, config, seeded):
    ids = [proxied.get("/status", headers=PROXIED).headers["X-Request-Id"] for _ in range(3)]
    tags = {request_id.split("-")[0] for request_id in ids}
    assert len(tags) == 1 and len(set(ids)) == 3
    assert tags.pop() not in {f"{pid:x}" for pid in seeded | {os.getpid()}}


@pytest.mark.parametrize(
    "path", ["/keyshare/v2//register", "/keyshare//v1", "/pg_dump//v1/get_backup_history"]
)
def test_a_doubled_slash_is_a_json_404_not_a_redirect(proxied, path):
    r = proxied.post(path, json={}, headers={**PROXIED, "Host": "evil.example"})
    assert r.status_code == 404, (r.status_code, r.headers.get("Location"))
    assert r.headers["Content-Type"] == "application/json; charset=utf-8"
    assert r.json()["code"] == "NOT_FOUND" and "Location" not in r.headers
