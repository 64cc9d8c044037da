"""Backup → change data → restore through the admin API loses nothing, and
the node keeps serving afterwards."""

from dataclasses import replace

import pytest

from shared.backup.service import BackupService
from tests.support.backup_helpers import REAL_TOOLS, JobWorker
from tests.support.keyshare_helpers import Wallet, secp_key, share_hex

PASSWORD = "test-admin-password"


@pytest.fixture(scope="module")
def node_dump_dir(module_tmp):
    folder = module_tmp / "dump"
    folder.mkdir(exist_ok=True)
    return folder


@pytest.fixture(scope="module")
def node(start_api, node_dump_dir):
    return start_api(dump_dir=node_dump_dir, backup_job_timeout_seconds=60)


@pytest.fixture(scope="module")
def worker(config, db, node_dump_dir):
    service = BackupService(replace(config, dump_dir=node_dump_dir), db, REAL_TOOLS)
    with JobWorker(service) as running:
        yield running


def test_backup_change_restore_loses_nothing(node, worker, db):
    wallet = Wallet(node)
    kept_key, kept_share = secp_key(), share_hex()
    wallet.post(
        "/keyshare/v1/register",
        {"curve_type": "secp256k1", "public_key": kept_key, "share": kept_share},
    )
    r = node.post("/pg_dump/v1/backup", json={"password": PASSWORD})
    assert r.status_code == 200, r.text
    data = r.json()["data"]
    assert list(data) == ["dumpId", "dumpPath", "dumpSize", "dumpDuration"]
    assert data["dumpSize"] > 0
    # change data after the backup
    later_key = secp_key()
    wallet.post(
        "/keyshare/v1/register",
        {"curve_type": "secp256k1", "public_key": later_key, "share": share_hex()},
    )
    with db.cursor() as cur:
        cur.execute(
            'DELETE FROM "2_key_shares" WHERE wallet_id = (SELECT wallet_id FROM "2_wallets"'
            " WHERE public_key = %s)",
            (bytes.fromhex(kept_key),),
        )
    assert wallet.post("/keyshare/v1/", {"public_key": kept_key}).status_code == 404
    r = node.post("/pg_dump/v1/restore", json={"password": PASSWORD, "dump_path": data["dumpPath"]})
    assert r.status_code == 200, r.text
    assert r.json() == {"success": True, "data": {"dump_path": data["dumpPath"]}}
    # the share deleted after the backup is back; the API kept working without restart
    got = wallet.post("/keyshare/v1/", {"public_key": kept_key})
    assert got.status_code == 200 and got.json()["data"]["share"] == kept_share
    assert wallet.post("/keyshare/v1/", {"public_key": later_key}).status_code == 404
    # history survived the restore and records the safety dump
    history = node.post("/pg_dump/v1/get_backup_history").json()["data"]
    paths = [row["dump_path"] or "" for row in history]
    assert data["dumpPath"] in paths
    assert any("pre_restore_" in p for p in paths)
    assert node.get("/status").json()["is_db_connected"] is True


def test_backup_file_and_row_are_consistent(node, worker, node_dump_dir, db):
    import hashlib
    from pathlib import Path

    r = node.post("/pg_dump/v1/backup", json={"password": PASSWORD})
    path = Path(r.json()["data"]["dumpPath"])
    assert path.parent == node_dump_dir and path.read_bytes()[:5] == b"PGDMP"
    assert not list(node_dump_dir.glob("*.tmp"))
    with db.cursor() as cur:
        cur.execute('SELECT status, meta FROM "2_pg_dumps" WHERE dump_path = %s', (str(path),))
        status, meta = cur.fetchone()
    assert status == "COMPLETED"
    assert meta["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert meta["dump_size"] == path.stat().st_size


def test_status_latest_backup_time_moves(node, worker):
    before = node.get("/status").json()["latest_backup_time"]
    node.post("/pg_dump/v1/backup", json={"password": PASSWORD})
    after = node.get("/status").json()["latest_backup_time"]
    assert after is not None and after != before
