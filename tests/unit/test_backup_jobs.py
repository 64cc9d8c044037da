"""Jobs from the API: two workers racing for one job — exactly one runs it;
one dump at a time across workers (advisory lock)."""

import threading
from dataclasses import replace

from services.backup_worker.jobrunner import run_next_job
from shared.backup.errors import BusyError
from shared.backup.locks import backup_lock
from shared.backup.service import BackupService
from shared.store import jobs
from tests.support.backup_helpers import REAL_TOOLS


def test_two_workers_one_job(config, db, dump_dir):
    with db.cursor() as cur:
        cur.execute("DELETE FROM ksn_jobs")
        job_id = jobs.enqueue(cur, "backup", {})
    services = [BackupService(replace(config, dump_dir=dump_dir), db, REAL_TOOLS) for _ in range(2)]
    barrier = threading.Barrier(2)
    ran = []

    def work(service):
        barrier.wait(10)
        ran.append(run_next_job(service))

    threads = [threading.Thread(target=work, args=(s,)) for s in services]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sorted(ran) == [False, True]
    with db.cursor() as cur:
        job = jobs.get(cur, job_id)
    assert job.state == "succeeded" and job.result["dumpSize"] > 0
    assert len(list(dump_dir.glob("*.dump"))) == 1


def test_only_one_backup_runner_at_a_time(config, service):
    with backup_lock(config, wait=False):
        try:
            with backup_lock(config, wait=False):
                raise AssertionError("second holder got the lock")
        except BusyError:
            pass
        # the daily backup elsewhere skips instead of doubling up
        assert service.backup_if_due() is None


def test_daily_backup_due_then_not_due(service, db):
    with db.cursor() as cur:
        cur.execute('DELETE FROM "2_pg_dumps"')
    assert service.backup_if_due() is not None
    assert service.backup_if_due() is None  # the newest COMPLETED row sets the next due time
