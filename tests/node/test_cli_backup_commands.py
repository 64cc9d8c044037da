"""`ksnode backup` and `ksnode backups` as an operator runs them: each opens
the database for itself and prints its outcome (restore and drill:
tests/node/test_audit_events.py, tests/node/test_restore_drill.py)."""

from __future__ import annotations

import os

from tests.support.node_process import run_ksnode


def test_a_backup_is_listed(env_for, config):
    env = {**os.environ, **env_for(config.db_name)}
    result = run_ksnode(env, "backups")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "no backups"
    result = run_ksnode(env, "backup")
    assert result.returncode == 0, result.stderr
    dump = result.stdout.split("done: ")[1].split(" (")[0]
    listing = run_ksnode(env, "backups", "--days", "1")
    assert listing.returncode == 0, listing.stderr
    header, row = listing.stdout.splitlines()
    assert header.startswith("created (UTC)") and row.endswith(dump) and " COMPLETED " in row
