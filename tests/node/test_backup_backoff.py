"""A failed scheduled backup is retried with a growing delay, never in a
loop; a full disk (a real tmpfs) fails fast with one clear error per attempt."""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import replace

import pytest

from shared.backup import schedule
from shared.backup.service import BackupService
from tests.support.backup_helpers import REAL_TOOLS, fake_pg_dump
from tests.support.filesystems import fill, small_tmpfs
from tests.support.ops import OPS_HEADERS
from tests.support.processes import wait_until
from tests.support.worker_helpers import worker_env, worker_process

PASSWORD = "test-admin-password"


def test_retry_delay_doubles_from_a_minute_to_an_hour():
    delays = [schedule.retry_delay(n, 60, 3600) for n in range(1, 10)]
    assert delays == [60, 120, 240, 480, 960, 1920, 3600, 3600, 3600]


def test_five_minutes_of_failures_make_a_handful_of_attempts(db):
    base = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    with db.transaction() as cur:
        cur.execute('DELETE FROM "2_pg_dumps"')
        cur.execute(
            'INSERT INTO "2_pg_dumps" (dump_id, status, created_at)'
            " VALUES (gen_random_uuid(), 'COMPLETED', %s)",
            (base - dt.timedelta(days=2),),
        )
    attempts = []
    for second in range(0, 301):
        now = base + dt.timedelta(seconds=second)
        with db.cursor() as cur:
            if schedule.seconds_until_due(cur, 86400, now) == 0:
                attempts.append(second)
                cur.execute(
                    'INSERT INTO "2_pg_dumps" (dump_id, status, meta, created_at) VALUES'
                    " (gen_random_uuid(), 'FAILED', '{\"error\": \"disk full\"}', %s)",
                    (now,),
                )
    assert attempts == [0, 60, 180]
    with db.cursor() as cur:  # and after a success, the normal interval again
        cur.execute('DELETE FROM "2_pg_dumps"')


@pytest.fixture()
def full_dir(tmp_path):
    """A real full filesystem (tmpfs) when the test may mount one; else None."""
    mount = tmp_path / "full"
    with small_tmpfs(mount, "512k") as mounted:
        if mounted:
            fill(mount)
        yield mount if mounted else None


def test_disk_full_fails_fast_and_backs_off(full_dir, env_for, config, db, tmp_path, start_api):
    overrides = {"BACKUP_RETRY_MIN_SECONDS": "1", "BACKUP_RETRY_MAX_SECONDS": "60"}
    print(f"full disk: {'a real tmpfs' if full_dir else 'a pg_dump failing with ENOSPC'}")
    if full_dir is None:  # no mount allowed: a pg_dump failing like a full disk does
        full_dir = tmp_path / "dump"
        overrides["PG_DUMP_BIN"] = fake_pg_dump(
            tmp_path,
            'echo "pg_dump: error: could not write to output file: No space left on device" >&2;'
            " exit 1",
        )
        overrides["PG_RESTORE_BIN"] = REAL_TOOLS.pg_restore
    with db.cursor() as cur:
        cur.execute('DELETE FROM "2_pg_dumps"')
    api = start_api(dump_dir=full_dir, backup_job_timeout_seconds=60)
    env = worker_env(env_for, config.db_name, tmp_path, DUMP_DIR=str(full_dir), **overrides)
    with worker_process(env) as worker:
        assert wait_until(lambda: failed_rows(db), 30)
        started = time.monotonic()
        r = api.post("/pg_dump/v1/backup", json={"password": PASSWORD})
        answered = time.monotonic() - started
        assert r.status_code == 500 and r.json()["code"] == "PG_DUMP_FAILED", r.text
        assert "No space left on device" in r.json()["msg"]
        assert answered < 5
        time.sleep(6)
        assert worker.poll() is None
        rows = failed_rows(db)
        print(f"manual backup on a full disk answered in {answered:.2f} s; {len(rows)} FAILED rows")
        # first attempt, the manual one, then retries after 1, 2, 4 s: a handful, not dozens
        assert 2 <= len(rows) <= 6, rows
        assert all("No space left on device" in error for error in rows)
        health = api.get("/health", headers=OPS_HEADERS).json()
        failed = next(x for x in health["reasons"] if x["reason"] == "backup_failed")
        assert "No space left" in failed["detail"]
    # stopped (SIGTERM lets an attempt in progress end): no attempt left a file behind
    assert not list(full_dir.glob("*.tmp"))


def failed_rows(db) -> list[str]:
    with db.cursor() as cur:
        cur.execute("SELECT meta->>'error' FROM \"2_pg_dumps\" WHERE status = 'FAILED'")
        return [row[0] for row in cur.fetchall()]


def test_a_success_after_failures_restores_the_daily_interval(config, db, dump_dir):
    with db.cursor() as cur:
        cur.execute('DELETE FROM "2_pg_dumps"')
        cur.execute(
            'INSERT INTO "2_pg_dumps" (dump_id, status, meta) VALUES'
            " (gen_random_uuid(), 'FAILED', '{\"error\": \"x\"}')"
        )
    service = BackupService(replace(config, dump_dir=dump_dir), db, REAL_TOOLS)
    assert service.backup_if_due() is None  # failed a moment ago: wait the back-off
    service.backup_now()
    with db.cursor() as cur:
        left = schedule.seconds_until_due(cur, config.backup_interval_seconds)
    assert left > config.backup_interval_seconds - 60
