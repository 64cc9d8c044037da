"""A backup worker SIGKILLed mid-dump: at its restart the row is FAILED and
the temporary file is gone (spec §13 W16)."""

import signal
import subprocess

from tests.support.backup_helpers import REAL_TOOLS, fake_pg_dump
from tests.support.processes import wait_until
from tests.support.worker_helpers import worker_env, worker_process


def test_killed_worker_leaves_failed_row_and_no_tmp(env_for, config, db, tmp_path):
    dump_dir = tmp_path / "dump"
    slow = fake_pg_dump(tmp_path, 'echo partial > "$OUT"; sleep 60')
    env = worker_env(
        env_for,
        config.db_name,
        tmp_path,
        DUMP_DIR=str(dump_dir),
        PG_DUMP_BIN=slow,
        PG_RESTORE_BIN=REAL_TOOLS.pg_restore,
    )
    with worker_process(env) as worker:
        assert wait_until(lambda: list(dump_dir.glob("*.tmp")), 30), "the dump never started"
        with db.cursor() as cur:
            cur.execute("SELECT count(*) FROM \"2_pg_dumps\" WHERE status = 'IN_PROGRESS'")
            assert cur.fetchone()[0] == 1
        worker.send_signal(signal.SIGKILL)
        worker.wait(10)
    subprocess.run(["pkill", "-f", slow], check=False)  # the orphaned fake pg_dump
    # restart with a working pg_dump: recovery runs before anything else
    env["PG_DUMP_BIN"] = REAL_TOOLS.pg_dump

    def attempts() -> list[tuple]:
        with db.cursor() as cur:
            cur.execute("SELECT status, meta->>'error' FROM \"2_pg_dumps\" ORDER BY created_at")
            return cur.fetchall()

    def recovered():
        rows = attempts()
        if rows and rows[0][0] == "FAILED" and any(r[0] == "COMPLETED" for r in rows):
            return rows[0]
        return None

    with worker_process(env) as restarted:
        row = wait_until(recovered, 30, interval=0.2)
        assert row is not None, attempts()
        assert "interrupted" in row[1]
        assert not list(dump_dir.glob("*.tmp"))
        restarted.send_signal(signal.SIGTERM)
        assert restarted.wait(30) == 0
