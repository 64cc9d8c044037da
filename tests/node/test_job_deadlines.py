"""Jobs carry their requester's deadline: a restore is never executed after
its request was answered (the two late-restore scenarios of issue 11), and a
restore asked for while a backup holds the worker answers BACKUP_BUSY at once."""

from __future__ import annotations

import threading
import time
from dataclasses import replace

import pytest

from services.api.ops.health import stale_after
from services.backup_worker.jobrunner import run_next_job
from shared.backup.locks import backup_lock
from shared.backup.pgtools import PgTools
from shared.backup.service import BackupService
from shared.store import heartbeats, jobs
from tests.support.backup_helpers import REAL_TOOLS, JobWorker, fake_pg_dump, set_worker_beat
from tests.support.keyshare_helpers import register_wallets
from tests.support.processes import wait_until
from tests.support.worker_helpers import count_shares, worker_env, worker_process

PASSWORD = "test-admin-password"


@pytest.fixture(scope="module")
def folder(module_tmp):
    path = module_tmp / "deadline_dump"
    path.mkdir()
    return path


@pytest.fixture(scope="module")
def node(start_api, folder):
    return start_api(dump_dir=folder, backup_job_timeout_seconds=2)


@pytest.fixture(scope="module")
def patient_node(start_api, folder):
    return start_api(dump_dir=folder, backup_job_timeout_seconds=60)


@pytest.fixture(scope="module")
def old_dump(config, db, folder) -> str:
    return BackupService(replace(config, dump_dir=folder), db, REAL_TOOLS).backup_now()["dumpPath"]


def served(keys) -> bool:
    return all(w.post("/keyshare/v1/", {"public_key": k}).status_code == 200 for w, k in keys)


def restore_jobs_since(db, since) -> list[tuple[str, str]]:
    with db.cursor() as cur:
        cur.execute(
            "SELECT job_id::text, state FROM ksn_jobs WHERE kind = 'restore' AND created_at >= %s",
            (since,),
        )
        return cur.fetchall()


def db_now(db):
    with db.cursor() as cur:
        cur.execute("SELECT now()")
        return cur.fetchone()[0]


def test_restore_answered_while_the_worker_was_stopped_never_runs_later(
    node, old_dump, folder, env_for, config, db, tmp_path
):
    since = db_now(db)
    first = register_wallets(node, 50)
    # The worker stopped moments ago: its heartbeat is still fresh, so the
    # job is queued (a worker with a stale beat is refused at once, below).
    set_worker_beat(db, config, age_seconds=0)
    started = time.monotonic()
    r = node.post("/pg_dump/v1/restore", json={"password": PASSWORD, "dump_path": old_dump})
    assert r.status_code == 504, r.text
    assert r.json()["code"] == "BACKUP_TIMEOUT" and "cancelled" in r.json()["msg"]
    assert time.monotonic() - started < 6
    [(job_id, state)] = restore_jobs_since(db, since)
    assert state == "cancelled"
    later = register_wallets(node, 50)
    env = worker_env(env_for, config.db_name, tmp_path, DUMP_DIR=str(folder))
    with worker_process(env) as worker:

        def worker_up():
            with db.cursor() as cur:
                beat = heartbeats.all_beats(cur, config.effective_node_id).get("backup_worker")
            return beat and beat["pid"] == worker.pid and beat["last_result"] is not None

        assert wait_until(worker_up, 30)
        time.sleep(1.5)  # several polls of the job queue
        assert worker.poll() is None
    assert served(first) and served(later)
    with db.cursor() as cur:
        job = jobs.get(cur, job_id)
    assert job.state == "cancelled"
    with db.cursor() as cur:
        cur.execute(
            "SELECT count(*) FROM \"2_pg_dumps\" WHERE dump_path LIKE '%%pre_restore_%%'"
            " AND created_at >= %s",
            (since,),
        )
        assert cur.fetchone()[0] == 0  # no restore even began


def test_a_worker_that_stops_beating_ends_the_wait_early(patient_node, config, db):
    """The request waits up to 60 s, but the worker's heartbeat goes stale
    a second in: the job is cancelled and the answer says why within
    seconds, not at the deadline."""
    set_worker_beat(db, config, age_seconds=stale_after(config.heartbeat_interval_seconds) - 1.0)
    since = db_now(db)
    started = time.monotonic()
    r = patient_node.post("/pg_dump/v1/backup", json={"password": PASSWORD})
    took = time.monotonic() - started
    assert r.status_code == 503, r.text
    assert r.json()["code"] == "BACKUP_WORKER_DOWN"
    assert "job was cancelled" in r.json()["msg"]
    assert took < 10, took
    with db.cursor() as cur:
        cur.execute(
            "SELECT state, error FROM ksn_jobs WHERE kind = 'backup' AND created_at >= %s",
            (since,),
        )
        assert cur.fetchall() == [("cancelled", "cancelled: the backup worker stopped")]


def test_job_past_its_deadline_is_expired_by_the_worker_not_run(old_dump, config, db, folder):
    service = BackupService(replace(config, dump_dir=folder), db, REAL_TOOLS)
    shares = count_shares(db)
    with db.cursor() as cur:  # as if the API died before it could cancel
        job_id = jobs.enqueue(cur, "restore", {"dump_path": old_dump}, wait_seconds=0.2)
    time.sleep(0.4)
    assert run_next_job(service) is False
    with db.cursor() as cur:
        job = jobs.get(cur, job_id)
    assert job.state == "expired" and "deadline" in job.error
    assert count_shares(db) == shares


def test_restore_during_a_manual_backup_answers_busy_at_once(
    patient_node, old_dump, config, db, folder, tmp_path
):
    since = db_now(db)
    slow = fake_pg_dump(tmp_path, f'sleep 3; exec {REAL_TOOLS.pg_dump} "$@"')
    service = BackupService(
        replace(config, dump_dir=folder), db, PgTools(slow, REAL_TOOLS.pg_restore, 18)
    )
    answers = {}
    with JobWorker(service):
        backup = threading.Thread(
            target=lambda: answers.update(
                backup=patient_node.post("/pg_dump/v1/backup", json={"password": PASSWORD})
            )
        )
        backup.start()
        time.sleep(0.3)
        started = time.monotonic()
        r = patient_node.post(
            "/pg_dump/v1/restore", json={"password": PASSWORD, "dump_path": old_dump}
        )
        answered = time.monotonic() - started
        assert r.status_code == 409, r.text
        assert r.json()["code"] == "BACKUP_BUSY" and "backup" in r.json()["msg"]
        assert answered < 2
        keys = register_wallets(patient_node, 20)
        backup.join(60)
        time.sleep(0.5)
    assert answers["backup"].status_code == 200, answers["backup"].text
    assert restore_jobs_since(db, since) == []
    assert served(keys)


def test_restore_while_the_backup_lock_is_held_answers_busy(patient_node, old_dump, config):
    with backup_lock(config, wait=False):  # a scheduled backup, a drill or the CLI
        r = patient_node.post(
            "/pg_dump/v1/restore", json={"password": PASSWORD, "dump_path": old_dump}
        )
    assert r.status_code == 409 and r.json()["code"] == "BACKUP_BUSY"


def test_restore_waiting_for_the_lock_past_its_deadline_is_expired(old_dump, config, db, folder):
    service = BackupService(replace(config, dump_dir=folder), db, REAL_TOOLS)
    shares = count_shares(db)
    with db.cursor() as cur:
        job_id = jobs.enqueue(cur, "restore", {"dump_path": old_dump}, wait_seconds=2.5)
    with backup_lock(config, wait=False):  # held elsewhere (another node, the CLI)
        assert run_next_job(service) is True
    with db.cursor() as cur:
        job = jobs.get(cur, job_id)
    assert job.state == "expired" and "held the worker" in job.error
    assert count_shares(db) == shares


def test_deadline_passing_during_the_safety_dump_stops_before_the_restore(
    old_dump, config, db, folder, tmp_path
):
    slow = fake_pg_dump(tmp_path, f'sleep 2.5; exec {REAL_TOOLS.pg_dump} "$@"')
    service = BackupService(
        replace(config, dump_dir=folder), db, PgTools(slow, REAL_TOOLS.pg_restore, 18)
    )
    before = count_shares(db)
    with db.cursor() as cur:
        job_id = jobs.enqueue(cur, "restore", {"dump_path": old_dump}, wait_seconds=3)
    assert run_next_job(service) is True
    with db.cursor() as cur:
        job = jobs.get(cur, job_id)
        cur.execute(
            'SELECT status FROM "2_pg_dumps" WHERE dump_path = %s',
            (job.result["safety_dump_path"],),
        )
        safety = cur.fetchone()
    assert job.state == "expired" and "before the restore step" in job.error
    assert safety == ("COMPLETED",)  # the safety dump is in the history all the same
    assert count_shares(db) == before
    assert not list(folder.glob(".restore-*.list"))
