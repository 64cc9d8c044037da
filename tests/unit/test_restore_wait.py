"""A restore whose pg_restore is still running when the admin request's wait
runs out is waited for while the node's backup worker lives, so it never
completes after its request was answered; with no live worker the answer
says it started and did not finish."""

from __future__ import annotations

import threading
import time
from dataclasses import replace

import pytest

from shared.backup.pgtools import PgTools
from shared.backup.service import BackupService
from tests.support.backup_helpers import REAL_TOOLS, JobWorker, set_worker_beat
from tests.support.processes import wait_until

PASSWORD = "test-admin-password"
WAIT_SECONDS = 2
RESTORE_SECONDS = 3.5  # the restore step alone outlasts the wait


@pytest.fixture(scope="module")
def folder(module_tmp):
    path = module_tmp / "restore_wait_dump"
    path.mkdir()
    return path


@pytest.fixture(scope="module")
def node(start_api, folder):
    return start_api(dump_dir=folder, backup_job_timeout_seconds=WAIT_SECONDS)


@pytest.fixture(scope="module")
def slow_restore_service(config, db, folder, module_tmp) -> BackupService:
    """pg_restore that takes RESTORE_SECONDS longer for the restore itself
    (--single-transaction), and runs as usual to verify or list a dump."""
    script = module_tmp / "slow_pg_restore.sh"
    script.write_text(
        "#!/usr/bin/env bash\n"
        f'for a in "$@"; do [ "$a" = "--single-transaction" ] && sleep {RESTORE_SECONDS}; done\n'
        f'exec {REAL_TOOLS.pg_restore} "$@"\n'
    )
    script.chmod(0o755)
    tools = PgTools(REAL_TOOLS.pg_dump, str(script), REAL_TOOLS.major)
    return BackupService(replace(config, dump_dir=folder), db, tools)


@pytest.fixture(scope="module")
def old_dump(slow_restore_service) -> str:
    return slow_restore_service.backup_now()["dumpPath"]


def restore_running(db) -> bool:
    with db.cursor() as cur:
        cur.execute("SELECT 1 FROM ksn_jobs WHERE kind = 'restore' AND state = 'running'")
        return cur.fetchone() is not None


def restore(node, dump_path: str):
    started = time.monotonic()
    r = node.post("/pg_dump/v1/restore", json={"password": PASSWORD, "dump_path": dump_path})
    return r, time.monotonic() - started


def test_a_restore_running_past_the_wait_is_waited_for_while_the_worker_lives(
    node, old_dump, slow_restore_service, db, config
):
    set_worker_beat(db, config, age_seconds=0)
    with JobWorker(slow_restore_service):
        r, took = restore(node, old_dump)
    assert r.status_code == 200, r.text
    assert r.json() == {"success": True, "data": {"dump_path": old_dump}}
    assert took > WAIT_SECONDS  # answered after the restore, not at the wait's end


def test_with_no_live_worker_a_running_restore_is_reported_started_not_finished(
    node, old_dump, slow_restore_service, db, config
):
    set_worker_beat(db, config, age_seconds=0)  # beating when asked: the job is queued

    def killed_mid_restore():  # the worker's beat goes stale once the restore runs
        assert wait_until(lambda: restore_running(db), 10)
        set_worker_beat(db, config, age_seconds=3600)

    killer = threading.Thread(target=killed_mid_restore)
    with JobWorker(slow_restore_service, beating=False):
        killer.start()
        r, took = restore(node, old_dump)
        killer.join(10)
        assert r.status_code == 504, r.text
        assert r.json()["code"] == "BACKUP_TIMEOUT"
        assert "started but did not finish" in r.json()["msg"]
        assert took < WAIT_SECONDS + RESTORE_SECONDS
