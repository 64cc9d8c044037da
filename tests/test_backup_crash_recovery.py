"""A backup worker SIGKILLed mid-dump: at its restart the row is FAILED and
the temporary file is gone (spec §13 W16)."""

import os
import signal
import subprocess
import sys
import time

from tests.backup_helpers import REAL_TOOLS, fake_pg_dump


def test_killed_worker_leaves_failed_row_and_no_tmp(env_for, config, db, tmp_path):
    dump_dir = tmp_path / "dump"
    slow = fake_pg_dump(tmp_path, 'echo partial > "$OUT"; sleep 60')
    env = {
        **os.environ,
        **env_for(
            config.db_name,
            DUMP_DIR=str(dump_dir),
            PG_DUMP_BIN=slow,
            PG_RESTORE_BIN=REAL_TOOLS.pg_restore,
            BACKUP_SELFCHECK="false",
            BACKUP_POLL_SECONDS="0.1",
            LOG_DIR=str(tmp_path / "logs"),
        ),
    }
    worker = subprocess.Popen(
        [sys.executable, "-m", "services.backup_worker"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not list(dump_dir.glob("*.tmp")):
            time.sleep(0.1)
        assert list(dump_dir.glob("*.tmp")), "the dump never started"
        with db.cursor() as cur:
            cur.execute("SELECT count(*) FROM \"2_pg_dumps\" WHERE status = 'IN_PROGRESS'")
            assert cur.fetchone()[0] == 1
        worker.send_signal(signal.SIGKILL)
        worker.wait(10)
    finally:
        if worker.poll() is None:
            worker.kill()
    subprocess.run(["pkill", "-f", slow], check=False)  # the orphaned fake pg_dump
    # restart with a working pg_dump: recovery runs before anything else
    env["PG_DUMP_BIN"] = REAL_TOOLS.pg_dump
    restarted = subprocess.Popen(
        [sys.executable, "-m", "services.backup_worker"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        row = None
        while time.monotonic() < deadline:
            with db.cursor() as cur:
                cur.execute("SELECT status, meta->>'error' FROM \"2_pg_dumps\" ORDER BY created_at")
                rows = cur.fetchall()
            if rows and rows[0][0] == "FAILED" and any(r[0] == "COMPLETED" for r in rows):
                row = rows[0]
                break
            time.sleep(0.2)
        assert row is not None, rows
        assert "interrupted" in row[1]
        assert not list(dump_dir.glob("*.tmp"))
    finally:
        restarted.send_signal(signal.SIGTERM)
        assert restarted.wait(30) == 0
