"""The startup self-check dumps and restores a scratch database, leaves
nothing behind, and its result is what /status reports."""

import pytest

from shared.backup.errors import SelfcheckNotRun
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


def test_a_dump_dir_taking_no_folder_means_not_run(config, pg_server, tmp_path):
    """No scratch folder in DUMP_DIR (read-only, or a file in its way): the
    self-check did not run, which the worker reports and retries; it used
    to escape as an OSError and end the worker at start, over and over."""
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    with pytest.raises(SelfcheckNotRun, match="cannot write in DUMP_DIR .*: Not a directory"):
        run_selfcheck(config, REAL_TOOLS, blocker / "dump")
    assert scratch_databases(pg_server) == []
