"""`ksnode audit verify` passes on an intact trail and names an edited and a
deleted record; `ksnode audit find` returns one user's records; retention
is told apart from tampering; records survive an API restart."""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import time

import pytest
import requests

from shared.audit.records import Record
from shared.audit.trail import AuditTrail, node_key, record_once
from shared.audit.verify import verify_chain
from shared.db.embedded import free_port
from shared.store import audit as store
from tests.support.api_program import start_api_program
from tests.support.keyshare_helpers import Wallet, secp_key, share_hex
from tests.support.node_process import run_ksnode


@pytest.fixture(scope="module")
def env(env_for, config) -> dict[str, str]:
    return {**os.environ, **env_for(config.db_name)}


@pytest.fixture(scope="module")
def key(config):
    return node_key(config)


def read(user: str, i: int) -> Record:
    return Record(
        "keyshare.v1.get",
        "ok",
        request_id=f"r-{i}",
        client="127.0.0.1",
        auth_type="telegram",
        user_ref=None if user is None else user,
        public_keys=(f"secp256k1:02{i:064x}",),
    )


def execute(db, sql: str, params=()) -> None:
    with db.cursor() as cur:
        cur.execute(sql, params)


def all_records(db) -> list:
    with db.connection() as conn:
        return list(store.scan(conn))


def test_verify_passes_then_names_the_edited_and_the_deleted_record(db, key, env):
    trail = AuditTrail(db, key)
    for i in range(12):
        trail.record(read(key.user_ref("telegram_1"), i))
    assert trail.flush()
    result = run_ksnode(env, "audit", "verify")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "audit trail intact: 12 records" in result.stdout
    execute(db, f"UPDATE {store.AUDIT} SET outcome = 'USER_NOT_FOUND' WHERE seq = 4")
    execute(db, f"DELETE FROM {store.AUDIT} WHERE seq = 9")
    result = run_ksnode(env, "audit", "verify")
    assert result.returncode == 1
    problems = [line for line in result.stdout.splitlines() if line.startswith("PROBLEM")]
    assert problems == [
        "PROBLEM seq 4 (edited): record 4 was edited (its hash does not match)",
        "PROBLEM seq 9 (deleted): record 9 deleted (between 8 and 10)",
    ]
    # Re-sealing by hand without the node's key does not help: a plain
    # SHA-256 over the edited row is not the HMAC.
    execute(db, f"UPDATE {store.AUDIT} SET hash = md5(hash) || md5(hash) WHERE seq = 4")
    result = run_ksnode(env, "audit", "verify")
    assert "PROBLEM seq 4 (edited)" in result.stdout
    execute(db, f"DELETE FROM {store.AUDIT}")


def test_deleting_the_first_records_is_not_mistaken_for_retention(db, key):
    for i in range(5):
        record_once(db, key, read(None, i))
    trail = AuditTrail(db, key, retention_days=90)
    future = dt.datetime.now(dt.UTC) + dt.timedelta(days=91)
    assert trail.apply_retention(now=future) == 5
    for i in range(3):
        record_once(db, key, read(None, 10 + i))
    report = verify_chain(key, all_records(db))
    assert report.ok, report.problems
    assert [s.seq for s in all_records(db)] == [6, 7, 8, 9]  # marker 6 says 1-5 went by retention
    execute(db, f"DELETE FROM {store.AUDIT} WHERE seq = 7")
    report = verify_chain(key, all_records(db))
    assert [(p.seq, p.kind) for p in report.problems] == [(7, "deleted")]
    execute(db, f"DELETE FROM {store.AUDIT} WHERE seq = 6")  # the retention marker too
    report = verify_chain(key, all_records(db))
    assert [p.message for p in report.problems] == [
        "records 1-7 deleted from the start of the trail (not by retention)"
    ]
    execute(db, f"DELETE FROM {store.AUDIT}")


def test_find_returns_one_users_records(api, db, env):
    alice, bob = Wallet(api), Wallet(api)
    public, share = secp_key(), share_hex()
    alice.post(
        "/keyshare/v1/register", {"curve_type": "secp256k1", "public_key": public, "share": share}
    )
    alice.post("/keyshare/v1", {"public_key": public})
    bob.post("/keyshare/v1", {"public_key": secp_key()})
    time.sleep(1.2)  # reads are committed within a second
    result = run_ksnode(env, "audit", "find", "--user-auth-id", alice.user_auth_id)
    assert result.returncode == 0, result.stderr
    found = [json.loads(line) for line in result.stdout.splitlines()]
    assert [(r["event"], r["outcome"]) for r in found] == [
        ("keyshare.v1.register", "ok"),
        ("keyshare.v1.get", "ok"),
    ]
    assert all(r["public_keys"] == [f"secp256k1:{public}"] for r in found)
    assert alice.user_auth_id not in result.stdout and share not in result.stdout
    result = run_ksnode(env, "audit", "find", "--user-auth-id", bob.user_auth_id)
    assert [json.loads(line)["outcome"] for line in result.stdout.splitlines()] == [
        "USER_NOT_FOUND"
    ]
    export = run_ksnode(env, "audit", "export", "--after-seq", str(found[0]["seq"]))
    assert json.loads(export.stdout.splitlines()[0])["seq"] == found[0]["seq"] + 1


class Client:
    def __init__(self, port: int):
        self.url = f"http://127.0.0.1:{port}"

    def post(self, path: str, **kw) -> requests.Response:
        return requests.post(self.url + path, timeout=10, **kw)


def test_records_survive_an_api_restart(env, db, key, tmp_path):
    execute(db, f"DELETE FROM {store.AUDIT}")
    env = {k: v for k, v in env.items() if k != "ADMIN_PASSWORD"}
    env["LOG_DIR"] = str(tmp_path / "logs")
    port = free_port()
    wallet_id = None
    seen: list[str] = []
    for _ in range(2):
        program = start_api_program(
            {**env, "PORT": str(port), "HOST": "127.0.0.1", "API_WORKERS": "2"}
        )
        try:
            wallet = Wallet(Client(port), wallet_id)
            wallet_id = wallet.user_id
            public = secp_key()
            r = wallet.post(
                "/keyshare/v1/register",
                {"curve_type": "secp256k1", "public_key": public, "share": share_hex()},
            )
            assert r.status_code == 200, r.text
            seen.append(r.headers["X-Request-Id"])
            for _ in range(5):  # reads queued, committed by the flush at SIGTERM at the latest
                seen.append(
                    wallet.post("/keyshare/v1", {"public_key": public}).headers["X-Request-Id"]
                )
        finally:
            program.send_signal(signal.SIGTERM)
            assert program.wait(30) == 0
    records = all_records(db)
    assert sorted(s.record.request_id for s in records) == sorted(seen)
    user = key.user_ref(f"telegram_{wallet_id}")
    assert all(s.record.user_ref == user for s in records)
    assert verify_chain(key, records).ok
    log_text = "".join(p.read_text() for p in (tmp_path / "logs").glob("ksnode-*.log"))
    warnings = [json.loads(line) for line in log_text.splitlines() if '"admin.disabled"' in line]
    assert len(warnings) == 2  # once per start, not once per worker
    assert warnings[0]["level"] == "warn"
    assert warnings[0]["message"] == "admin routes are disabled: ADMIN_PASSWORD is not set"


def test_a_durable_record_the_database_refuses_is_logged_and_stored_later(config, db, key, caplog):
    """Database unreachable: the record goes to the log at once, stays
    queued, and reaches the table in order once the database answers."""
    from dataclasses import replace

    from shared.db.pool import Database

    execute(db, f"DELETE FROM {store.AUDIT}")
    down = Database(replace(config, db_port=free_port()), maxconn=1, acquire_timeout=1)
    trail = AuditTrail(down, key)
    trail.record(read(None, 1))
    with caplog.at_level("ERROR", logger="audit"):
        trail.record(Record("admin.restore", "ok", request_id="r-admin"), durable=True)
    (logged,) = [r for r in caplog.records if r.event == "audit.write_failed"]
    assert logged.audit["event"] == "admin.restore" and logged.audit["request_id"] == "r-admin"
    assert all_records(db) == []
    trail.db = db  # the database is back
    assert trail.flush()
    assert [s.record.request_id for s in all_records(db)] == ["r-1", "r-admin"]
    trail._stop.set()
    down.close()
