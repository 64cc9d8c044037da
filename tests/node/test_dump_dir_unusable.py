"""A DUMP_DIR that takes no file (a read-only mount, a file in its way) when
the backup worker starts: the worker stays up, the self-check is recorded as
not run and the backup as failed, each with the reason, and once the folder
works both go through without a restart. Real program, real Postgres."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.support.processes import terminate, wait_until

ROOT = Path(__file__).resolve().parents[2]


def checks(db) -> list[tuple[bool, str | None]]:
    with db.cursor() as cur:
        cur.execute("SELECT ok, detail FROM ksn_backup_checks ORDER BY check_id")
        return cur.fetchall()


def latest_check(db) -> tuple[bool | None, str | None]:
    return (checks(db) or [(None, None)])[-1]


def dumps(db) -> list[tuple[str, str | None]]:
    with db.cursor() as cur:
        cur.execute("SELECT status, meta->>'error' FROM \"2_pg_dumps\" ORDER BY created_at")
        return cur.fetchall()


def test_the_worker_stays_up_says_why_and_heals(env_for, config, db, tmp_path):
    blocker = tmp_path / "disk"
    blocker.write_text("")  # DUMP_DIR's parent is a file: nothing can be made in it
    env = {
        **os.environ,
        **env_for(
            config.db_name,
            DUMP_DIR=str(blocker / "dump"),
            LOG_DIR=str(tmp_path / "logs"),
            BACKUP_POLL_SECONDS="0.2",
            BACKUP_RETRY_MIN_SECONDS="1",
            BACKUP_RETRY_MAX_SECONDS="2",
            HEARTBEAT_INTERVAL_SECONDS="0.5",
        ),
    }
    worker = subprocess.Popen(
        [sys.executable, "-m", "services.backup_worker"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert wait_until(lambda: checks(db) and dumps(db), 30), "nothing recorded"
        assert wait_until(lambda: len(dumps(db)) >= 2, 10)  # retried, so it kept running
        assert worker.poll() is None, "the worker ended"
        recorded = checks(db)
        assert len(recorded) == 1, recorded  # one row per reason, not one per try
        ok, detail = recorded[0]
        assert ok is False and detail.startswith("not run: cannot write in DUMP_DIR"), detail
        assert all(
            status == "FAILED" and "cannot write the dump" in error for status, error in dumps(db)
        ), dumps(db)
        blocker.unlink()
        blocker.mkdir()  # the fault goes: no restart needed
        assert wait_until(lambda: latest_check(db) == (True, None), 60)
        assert wait_until(lambda: dumps(db)[-1][0] == "COMPLETED", 60), dumps(db)
    finally:
        code = terminate(worker, 40)
        output = worker.stdout.read() if worker.stdout else ""
    assert code == 0, output[-2000:]
    assert "Traceback" not in output, output[-2000:]
