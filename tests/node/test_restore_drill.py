"""Restore drills: the newest COMPLETED dump restores into a scratch database
and matches the row counts and checksums recorded when it was taken; a
tampered dump fails; the scratch database never stays behind."""

from __future__ import annotations

import os
import shutil
from dataclasses import replace

import pytest
from psycopg2.extras import Json

from shared.backup.service import BackupService
from shared.store import contents
from tests.conftest import create_database
from tests.support.backup_helpers import REAL_TOOLS, databases_like
from tests.support.keyshare_helpers import Wallet, secp_key, share_hex
from tests.support.node_process import run_ksnode


def scratch_databases(pg_server) -> list[str]:
    return databases_like(pg_server, "ksn_drill_%")


@pytest.fixture()
def svc(config, db, dump_dir, api):
    with db.cursor() as cur:
        cur.execute('DELETE FROM "2_pg_dumps"')
        cur.execute("DELETE FROM ksn_backup_drills")
    for _ in range(5):
        r = Wallet(api).post(
            "/keyshare/v1/register",
            {"curve_type": "secp256k1", "public_key": secp_key(), "share": share_hex()},
        )
        assert r.status_code == 200
    return BackupService(replace(config, dump_dir=dump_dir), db, REAL_TOOLS)


def meta_of(db, dump_id: str) -> dict:
    with db.cursor() as cur:
        cur.execute('SELECT meta FROM "2_pg_dumps" WHERE dump_id = %s', (dump_id,))
        return cur.fetchone()[0]


def test_dump_meta_records_the_key_tables_as_in_the_database(svc, db):
    taken = svc.backup_now()
    with db.transaction() as cur:
        now = contents.summarize(cur)
    assert meta_of(db, taken["dumpId"])["tables"] == now
    assert now["2_key_shares"]["rows"] >= 5 and set(now) == set(contents.KEY_TABLES)


def test_drill_passes_on_a_good_dump_and_leaves_nothing(svc, db, pg_server):
    svc.backup_now()
    outcome = svc.drill_now()
    assert outcome["ok"] is True and outcome["detail"] is None, outcome
    assert scratch_databases(pg_server) == []
    with db.cursor() as cur:
        cur.execute("SELECT ok FROM ksn_backup_drills ORDER BY drill_id DESC LIMIT 1")
        assert cur.fetchone() == (True,)


def test_drill_fails_when_the_dump_holds_other_rows_than_recorded(svc, db, pg_server):
    first = svc.backup_now()
    with db.cursor() as cur:
        cur.execute(
            'DELETE FROM "2_key_shares" WHERE ctid = (SELECT min(ctid) FROM "2_key_shares")'
        )
    second = svc.backup_now()
    # tamper: the first dump's file replaced by the second's (its SHA-256 updated to
    # match, so only the content check can tell)
    shutil.copyfile(second["dumpPath"], first["dumpPath"])
    meta = meta_of(db, first["dumpId"])
    meta["sha256"] = meta_of(db, second["dumpId"])["sha256"]
    with db.cursor() as cur:
        cur.execute(
            'UPDATE "2_pg_dumps" SET meta = %s WHERE dump_id = %s', (Json(meta), first["dumpId"])
        )
        cur.execute(
            "UPDATE \"2_pg_dumps\" SET status = 'DELETED' WHERE dump_id = %s", (second["dumpId"],)
        )
    outcome = svc.drill_now()
    assert outcome["ok"] is False
    assert "2_key_shares" in outcome["detail"] and "recorded at dump time" in outcome["detail"]
    assert scratch_databases(pg_server) == []


def test_drill_fails_when_a_checksum_differs(svc, db):
    taken = svc.backup_now()
    meta = meta_of(db, taken["dumpId"])
    meta["tables"]["2_wallets"]["checksum"] = "0" * 32
    with db.cursor() as cur:
        cur.execute(
            'UPDATE "2_pg_dumps" SET meta = %s WHERE dump_id = %s', (Json(meta), taken["dumpId"])
        )
    outcome = svc.drill_now()
    assert outcome["ok"] is False and "2_wallets: content checksum differs" in outcome["detail"]


def test_drill_fails_on_a_changed_file(svc, db):
    taken = svc.backup_now()
    with open(taken["dumpPath"], "r+b") as handle:
        handle.seek(-10, os.SEEK_END)
        handle.write(b"\xff" * 10)
    outcome = svc.drill_now()
    assert outcome["ok"] is False and "SHA-256 differs" in outcome["detail"]
    with db.cursor() as cur:
        cur.execute("SELECT ok, detail FROM ksn_backup_drills ORDER BY drill_id DESC LIMIT 1")
        ok, detail = cur.fetchone()
    assert ok is False and "SHA-256" in detail


def test_scheduled_drill_runs_when_due_then_waits(svc):
    svc.backup_now()
    assert svc.drill_if_due()["ok"] is True
    assert svc.drill_if_due() is None  # the next one is a week later


def test_cli_backup_drill(svc, env_for, config, dump_dir):
    svc.backup_now()
    env = {**os.environ, **env_for(config.db_name, DUMP_DIR=str(dump_dir))}
    result = run_ksnode(env, "backup", "--drill")
    assert result.returncode == 0, result.stderr
    assert "drill passed" in result.stdout


def test_recovery_removes_what_a_killed_run_left(config, db, dump_dir, pg_server):
    from services.backup_worker.recovery import recover
    from shared.backup.locks import backup_lock

    create_database(pg_server, "ksn_drill_leftover")
    (dump_dir / ".restore-abc.list").write_text("x")
    (dump_dir / "key_share_node_x.dump.tmp").write_text("x")
    with backup_lock(config, wait=False):
        counts = recover(db, dump_dir)
    assert counts["tmp_removed"] == 2
    assert list(dump_dir.iterdir()) == []
    assert scratch_databases(pg_server) == []
