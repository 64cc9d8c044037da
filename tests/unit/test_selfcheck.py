"""The startup self-check dumps and restores a scratch database, leaves
nothing behind, and its result is what /status reports."""

from shared.backup.pgtools import PgTools
from shared.backup.selfcheck import run_selfcheck
from tests.support.backup_helpers import REAL_TOOLS, databases_like, fake_pg_dump


def scratch_databases(pg_server) -> list[str]:
    return databases_like(pg_server, "ksn_selfcheck_%")


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
