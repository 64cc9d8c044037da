"""SIGKILL of the backup worker: its pg_dump/pg_restore die with it, and the
next worker records what really happened in the database (issue 11)."""

from __future__ import annotations

import signal
import threading
import time
from dataclasses import replace

import pytest

from shared.backup.restore import APPLICATION_NAME
from shared.backup.service import BackupService
from shared.db.pool import connect
from shared.store import contents, jobs
from tests.support.backup_helpers import REAL_TOOLS, fake_pg_dump
from tests.support.keyshare_helpers import register_wallets
from tests.support.processes import wait_until
from tests.support.worker_helpers import count_shares, processes_running, worker_env, worker_process

PASSWORD = "test-admin-password"


@pytest.fixture(scope="module")
def folder(module_tmp):
    path = module_tmp / "kill_dump"
    path.mkdir()
    return path


@pytest.fixture(scope="module")
def node(start_api, folder):
    return start_api(dump_dir=folder, backup_job_timeout_seconds=90)


def identities(db) -> dict[str, int]:
    with db.cursor() as cur:
        return contents.table_identities(cur)


def restore_session_waiting(db) -> bool:
    with db.cursor() as cur:
        cur.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s"
            " AND wait_event_type = 'Lock'",
            (APPLICATION_NAME,),
        )
        return cur.fetchone()[0] > 0


def latest_restore_job(db) -> jobs.Job:
    with db.cursor() as cur:
        cur.execute(
            "SELECT job_id::text FROM ksn_jobs WHERE kind = 'restore'"
            " ORDER BY created_at DESC LIMIT 1"
        )
        return jobs.get(cur, cur.fetchone()[0])


def ask_restore(api, path: str) -> tuple[threading.Thread, dict]:
    answer: dict = {}

    def request():
        answer["r"] = api.session.post(
            api.url + "/pg_dump/v1/restore",
            json={"password": PASSWORD, "dump_path": path},
            timeout=120,
        )

    thread = threading.Thread(target=request)
    thread.start()
    return thread, answer


def test_killed_worker_takes_its_pg_dump_with_it(env_for, config, db, tmp_path):
    dump_dir = tmp_path / "dump"
    slow = fake_pg_dump(tmp_path, 'while true; do echo x >> "$OUT"; sleep 0.05; done')
    env = worker_env(
        env_for,
        config.db_name,
        tmp_path,
        DUMP_DIR=str(dump_dir),
        PG_DUMP_BIN=slow,
        PG_RESTORE_BIN=REAL_TOOLS.pg_restore,
        BACKUP_INTERVAL_SECONDS="1",
    )
    with db.cursor() as cur:
        cur.execute('DELETE FROM "2_pg_dumps"')
    with worker_process(env) as worker:
        assert wait_until(lambda: list(dump_dir.glob("*.tmp")), 30), "the dump never started"
        # The worker creates the .tmp file before it starts pg_dump: wait for
        # the process too (between fork and exec its command line is Python's).
        assert wait_until(lambda: processes_running(slow), 10), "pg_dump never ran"
        worker.send_signal(signal.SIGKILL)
        worker.wait(10)
    assert wait_until(lambda: not processes_running(slow), 5), "pg_dump outlived its worker"
    [tmp] = list(dump_dir.glob("*.tmp"))
    size = tmp.stat().st_size
    time.sleep(0.5)
    assert tmp.stat().st_size == size  # nothing writes into it any more


def test_kill_mid_restore_that_rolls_back_is_recorded_unchanged(
    node, folder, env_for, config, db, tmp_path
):
    old = BackupService(replace(config, dump_dir=folder), db, REAL_TOOLS).backup_now()
    register_wallets(node, 10)  # newer than the dump
    shares = count_shares(db)
    blocker = connect(config)  # holds the restore inside its transaction
    with blocker.cursor() as cur:
        cur.execute('LOCK TABLE "2_key_shares" IN ACCESS SHARE MODE')
    env = worker_env(env_for, config.db_name, tmp_path, DUMP_DIR=str(folder))
    try:
        with worker_process(env) as worker:
            thread, answer = ask_restore(node, old["dumpPath"])
            assert wait_until(lambda: restore_session_waiting(db), 60), "restore never started"
            worker.send_signal(signal.SIGKILL)
            worker.wait(10)
            assert wait_until(lambda: not processes_running(f"{folder}/.restore-"), 5), (
                "pg_restore outlived its worker"
            )
    finally:
        blocker.rollback()
        blocker.close()
    with worker_process(env):  # the next worker finds out what happened
        thread.join(60)
    r = answer["r"]
    assert r.status_code == 500 and r.json()["code"] == "PG_RESTORE_FAILED", r.text
    assert "rolled back" in r.json()["msg"]
    job = latest_restore_job(db)
    assert job.state == "failed" and job.result["recovered"] is True
    assert count_shares(db) == shares  # what was recorded is what the database has
    with db.cursor() as cur:
        cur.execute(
            'SELECT status FROM "2_pg_dumps" WHERE dump_path = %s',
            (job.result["safety_dump_path"],),
        )
        assert cur.fetchone() == ("COMPLETED",)
    assert not list(folder.glob(".restore-*.list")) and not list(folder.glob("*.tmp"))


def test_kill_after_the_restore_committed_is_recorded_succeeded(
    node, folder, env_for, config, db, tmp_path
):
    old = BackupService(replace(config, dump_dir=folder), db, REAL_TOOLS).backup_now()
    with db.cursor() as cur:
        cur.execute('SELECT count(*) FROM "2_key_shares"')
        in_dump = cur.fetchone()[0]
    register_wallets(node, 10)
    # pg_restore that commits, then hangs as if the worker were killed before recording it
    wrapper = tmp_path / "pg_restore"
    wrapper.write_text(
        "#!/usr/bin/env bash\n"
        f'{REAL_TOOLS.pg_restore} "$@"; rc=$?\n'
        'case "$*" in *--single-transaction*) [ $rc = 0 ] && exec sleep 120;; esac\n'
        "exit $rc\n"
    )
    wrapper.chmod(0o755)
    env = worker_env(
        env_for,
        config.db_name,
        tmp_path,
        DUMP_DIR=str(folder),
        PG_DUMP_BIN=REAL_TOOLS.pg_dump,
        PG_RESTORE_BIN=str(wrapper),
    )
    before = identities(db)
    with worker_process(env) as worker:
        thread, answer = ask_restore(node, old["dumpPath"])
        assert wait_until(lambda: identities(db) != before, 60), "restore never committed"
        worker.send_signal(signal.SIGKILL)
        worker.wait(10)
    with worker_process(env):
        thread.join(60)
    r = answer["r"]
    assert r.status_code == 200, r.text
    job = latest_restore_job(db)
    assert job.state == "succeeded" and job.result["recovered"] is True
    assert count_shares(db) == in_dump  # the restore did happen: the newer 10 are gone
    assert not list(folder.glob(".restore-*.list"))
