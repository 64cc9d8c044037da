"""Every audited event leaves exactly one record with the required fields,
and no record holds a share, token, password or user identity in clear."""

from __future__ import annotations

import json
import os
import time
from dataclasses import replace

import pytest

from shared.audit.trail import node_key
from shared.backup.service import BackupService
from shared.store import audit as store
from tests.support.backup_helpers import REAL_TOOLS, JobWorker
from tests.support.keyshare_helpers import Wallet, ed_key, secp_key, share_hex
from tests.support.node_process import run_ksnode

PASSWORD = "test-admin-password"
FIELDS = ("time", "event", "outcome", "request_id", "client", "auth_type", "user_ref")


@pytest.fixture(scope="module")
def key(config):
    return node_key(config)


@pytest.fixture(scope="module")
def secrets() -> list[str]:
    """Every secret a test sends; none may appear in any record."""
    return [PASSWORD, "wrong-guess-pw", "123456:TEST-bot-token"]


def records(db, request_id: str, timeout: float = 5.0) -> list[dict]:
    """The records of one request (reads are committed within a second)."""
    deadline = time.monotonic() + timeout
    while True:
        with db.cursor() as cur:
            cur.execute(f"SELECT seq FROM {store.AUDIT} WHERE request_id = %s", (request_id,))
            seqs = [row[0] for row in cur.fetchall()]
        if seqs or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    with db.connection() as conn:
        found = [s.as_json() for s in store.scan(conn, min(seqs) - 1)] if seqs else []
    return [r for r in found if r["request_id"] == request_id]


def one_record(db, response, secrets: list[str], *, event: str, outcome: str = "ok") -> dict:
    request_id = response.headers["X-Request-Id"]
    found = records(db, request_id)
    assert len(found) == 1, found
    record = found[0]
    for name in FIELDS:
        assert name in record
    assert record["event"] == event and record["outcome"] == outcome
    assert record["request_id"] == request_id and record["client"] == "127.0.0.1"
    text = json.dumps(record)
    for secret in secrets:
        assert secret not in text
    return record


def wallet_secrets(wallet: Wallet, *shares: str) -> list[str]:
    token = wallet.headers["Authorization"][len("Bearer ") :]
    return [wallet.user_auth_id, token, json.loads(token)["hash"], *shares]


def test_v1_register_get_reshare(api, db, key, secrets):
    wallet, public, share = Wallet(api), secp_key(), share_hex()
    body = {"curve_type": "secp256k1", "public_key": public, "share": share}
    hidden = secrets + wallet_secrets(wallet, share)
    ref = key.user_ref(wallet.user_auth_id)
    r = wallet.post("/keyshare/v1/register", body)
    assert r.status_code == 200
    rec = one_record(db, r, hidden, event="keyshare.v1.register")
    assert rec["auth_type"] == "telegram" and rec["user_ref"] == ref
    assert rec["public_keys"] == [f"secp256k1:{public}"]
    r = wallet.post("/keyshare/v1", {"curve_type": "secp256k1", "public_key": public})
    assert r.json()["data"]["share"] == share
    rec = one_record(db, r, hidden, event="keyshare.v1.get")
    assert rec["user_ref"] == ref and rec["public_keys"] == [f"secp256k1:{public}"]
    r = wallet.post("/keyshare/v1/reshare", body)
    assert r.status_code == 200
    one_record(db, r, hidden, event="keyshare.v1.reshare")


def test_v2_register_get_reshare(api, db, key, secrets):
    wallet, secp, ed = Wallet(api), secp_key(), ed_key()
    s1, s2 = share_hex(), share_hex()
    hidden = secrets + wallet_secrets(wallet, s1, s2)
    keys = [f"secp256k1:{secp}", f"ed25519:{ed}"]
    r = wallet.register_v2(secp, s1, ed, s2)
    assert r.status_code == 200
    rec = one_record(db, r, hidden, event="keyshare.v2.register")
    assert rec["public_keys"] == keys and rec["user_ref"] == key.user_ref(wallet.user_auth_id)
    r = wallet.post("/keyshare/v2", {"wallets": {"secp256k1": secp, "ed25519": ed}})
    assert r.status_code == 200
    assert one_record(db, r, hidden, event="keyshare.v2.get")["public_keys"] == keys
    wallets = {
        "secp256k1": {"public_key": secp, "share": s1},
        "ed25519": {"public_key": ed, "share": s2},
    }
    r = wallet.post("/keyshare/v2/reshare", {"wallets": wallets})
    assert r.status_code == 200
    one_record(db, r, hidden, event="keyshare.v2.reshare")


def test_v2_register_ed25519_and_reshare_register(api, db, secrets):
    wallet, secp, ed, s1, s2 = Wallet(api), secp_key(), ed_key(), share_hex(), share_hex()
    hidden = secrets + wallet_secrets(wallet, s1, s2)
    wallet.post(
        "/keyshare/v1/register", {"curve_type": "secp256k1", "public_key": secp, "share": s1}
    )
    r = wallet.post("/keyshare/v2/register/ed25519", {"public_key": ed, "share": s2})
    assert r.status_code == 200, r.text
    rec = one_record(db, r, hidden, event="keyshare.v2.register_ed25519")
    assert rec["public_keys"] == [f"ed25519:{ed}"]
    other, key2, s3 = Wallet(api), secp_key(), share_hex()
    body = {"wallets": {"secp256k1": {"public_key": key2, "share": s3}}}
    r = other.post("/keyshare/v2/reshare/register", body)
    assert r.status_code == 200, r.text
    one_record(db, r, secrets + wallet_secrets(other, s3), event="keyshare.v2.reshare_register")


def test_refused_read_is_recorded_with_its_code(api, db, secrets):
    wallet = Wallet(api)
    r = wallet.post("/keyshare/v1", {"public_key": secp_key()})
    assert r.status_code == 404
    rec = one_record(db, r, secrets + wallet_secrets(wallet), event="keyshare.v1.get",
                     outcome="USER_NOT_FOUND")  # fmt: skip
    assert rec["detail"]["status"] == 404
    r = api.post("/keyshare/v1", json={"auth_type": "telegram", "public_key": secp_key()},
                 headers={"Authorization": "Bearer forged"})  # fmt: skip
    rec = one_record(db, r, secrets + ["forged"], event="keyshare.v1.get", outcome="UNAUTHORIZED")
    assert rec["user_ref"] is None and rec["auth_type"] == "telegram"


def test_a_share_sent_as_public_key_is_not_recorded(api, db, secrets):
    wallet, share = Wallet(api), share_hex()
    r = wallet.post("/keyshare/v1", {"public_key": share})
    assert r.status_code == 400
    rec = one_record(
        db, r, secrets + [share], event="keyshare.v1.get", outcome="PUBLIC_KEY_INVALID"
    )
    assert rec["public_keys"] == ["secp256k1:invalid"]


def test_checks_are_recorded_only_when_enabled(api, start_api, db, key, secrets):
    wallet, public = Wallet(api), secp_key()
    body = {"user_auth_id": wallet.user_auth_id, "auth_type": "telegram", "public_key": public}
    r = api.post("/keyshare/v1/check", json=body)
    assert r.status_code == 200
    time.sleep(1.2)  # longer than a flush
    assert records(db, r.headers["X-Request-Id"], timeout=0) == []
    checking = start_api(audit_checks=True)
    r = checking.post("/keyshare/v1/check", json=body)
    rec = one_record(db, r, secrets + [wallet.user_auth_id], event="keyshare.v1.check")
    assert rec["user_ref"] == key.user_ref(wallet.user_auth_id)
    body = {"user_auth_id": wallet.user_auth_id, "auth_type": "telegram",
            "wallets": {"secp256k1": public}}  # fmt: skip
    r = checking.post("/keyshare/v2/check", json=body)
    one_record(db, r, secrets + [wallet.user_auth_id], event="keyshare.v2.check")


@pytest.fixture(scope="module")
def worker(config, db, module_tmp):
    folder = module_tmp / "dump"
    folder.mkdir(exist_ok=True)
    with JobWorker(BackupService(replace(config, dump_dir=folder), db, REAL_TOOLS)) as running:
        yield running


def test_admin_calls_allowed_and_refused(api, db, worker, secrets):
    r = api.post("/pg_dump/v1/backup", json={"password": "wrong-guess-pw"})
    rec = one_record(db, r, secrets, event="admin.backup", outcome="UNAUTHORIZED")
    assert rec["auth_type"] == "admin" and rec["detail"]["reason"] == "Invalid admin password"
    r = api.post("/pg_dump/v1/backup", json={})
    rec = one_record(db, r, secrets, event="admin.backup", outcome="UNAUTHORIZED")
    assert rec["detail"]["reason"] == "Admin password is required"
    r = api.post("/pg_dump/v1/backup", json={"password": PASSWORD})
    assert r.status_code == 200, r.text
    one_record(db, r, secrets, event="admin.backup")
    dump_path = r.json()["data"]["dumpPath"]
    r = api.post("/pg_dump/v1/restore", json={"password": PASSWORD, "dump_path": dump_path})
    assert r.status_code == 200, r.text
    rec = one_record(db, r, secrets, event="admin.restore")
    assert rec["detail"]["dump_path"] == dump_path
    r = api.post("/pg_dump/v1/get_backup_history", json={"days": 1})
    one_record(db, r, secrets, event="admin.backup_history")


def test_admin_call_without_admin_password_is_recorded(start_api, db, secrets):
    r = start_api(admin_password="").post("/pg_dump/v1/restore", json={"password": "x"})
    assert r.status_code == 503
    rec = one_record(db, r, secrets, event="admin.restore", outcome="ADMIN_DISABLED")
    assert "ADMIN_PASSWORD is not set" in rec["detail"]["reason"]


def test_client_address_follows_trust_proxy_hops(start_api, db, secrets):
    server = start_api(trust_proxy_hops=1)
    r = server.post("/pg_dump/v1/get_backup_history", json={},
                    headers={"X-Forwarded-For": "198.51.100.9, 203.0.113.5"})  # fmt: skip
    rec = records(db, r.headers["X-Request-Id"])[0]
    assert rec["client"] == "203.0.113.5"


def cli_records(db, event: str) -> list[dict]:
    with db.connection() as conn:
        return [s.as_json() for s in store.scan(conn) if s.record.event == event]


def test_keypair_rotation_and_cli_restore_are_recorded(env_for, config, db, module_tmp, secrets):
    env = {**os.environ, **env_for(config.db_name)}
    result = run_ksnode(env, "rotate-keypair", "--rotate")
    assert result.returncode == 0, result.stderr
    (rec,) = cli_records(db, "keypair.rotate")
    public = result.stdout.split("public key ")[1].split()[0]
    assert rec["public_keys"] == [f"ed25519:{public}"] and rec["auth_type"] == "local"
    assert rec["client"].startswith("local:") and rec["outcome"] == "ok"
    result = run_ksnode(env, "backup")
    assert result.returncode == 0, result.stderr
    dump = result.stdout.split("done: ")[1].split(" (")[0]
    result = run_ksnode(env, "restore", "--yes", dump)
    assert result.returncode == 0, result.stderr
    (rec,) = cli_records(db, "restore")
    assert rec["detail"]["dump_path"] == dump and rec["outcome"] == "ok"
    text = json.dumps(cli_records(db, "restore") + cli_records(db, "keypair.rotate"))
    assert not any(secret in text for secret in secrets)


def test_a_nul_in_a_dump_path_is_stored_replaced(api, db, secrets):
    r = api.post("/pg_dump/v1/restore", json={"password": PASSWORD, "dump_path": "a\u0000b.dump"})
    assert r.status_code == 400
    rec = one_record(db, r, secrets, event="admin.restore", outcome="DUMP_FILE_NOT_FOUND")
    assert rec["detail"]["dump_path"] == "a\ufffdb.dump"
