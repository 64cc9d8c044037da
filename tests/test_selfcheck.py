"""The startup self-check dumps and restores a scratch database, leaves
nothing behind, and its result is what /status reports."""

from services.backup_worker.pgtools import PgTools
from services.backup_worker.selfcheck import run_selfcheck
from tests.backup_helpers import REAL_TOOLS, fake_pg_dump
from tests.conftest import admin_connection


def scratch_databases(pg_server):
    conn = admin_connection(pg_server)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT datname FROM pg_database WHERE datname LIKE 'ksn_selfcheck_%'")
            return [r[0] for r in cur.fetchall()]
    finally:
        conn.close()


def test_passes_and_leaves_nothing(config, dump_dir, pg_server):
    assert run_selfcheck(config, REAL_TOOLS, dump_dir) == (True, None)
    assert scratch_databases(pg_server) == []
    assert list(dump_dir.iterdir()) == []


def test_failure_is_reported_and_still_cleaned_up(config, dump_dir, pg_server, tmp_path):
    broken = PgTools(fake_pg_dump(tmp_path, "exit 3"), REAL_TOOLS.pg_restore, 18)
    ok, detail = run_selfcheck(config, broken, dump_dir)
    assert ok is False and "pg_dump failed" in detail
    assert scratch_databases(pg_server) == []
    assert list(dump_dir.iterdir()) == []
