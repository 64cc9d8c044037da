"""Cleaning up after a worker that was killed mid-dump."""

from __future__ import annotations

import os
import socket
from pathlib import Path

from services.backup_worker.dump import TMP_SUFFIX
from shared.store import dumps
from shared.store.tables import JOBS


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def recover(cur, dump_dir: Path) -> dict[str, int]:
    """IN_PROGRESS rows → FAILED, leftover temporary files removed, jobs
    running in a dead process of this host → failed. Call under the backup
    lock so a live dump elsewhere is not disturbed."""
    failed_rows = dumps.fail_interrupted(cur)
    removed = 0
    if dump_dir.is_dir():
        for leftover in dump_dir.glob(f"*{TMP_SUFFIX}"):
            try:
                leftover.unlink()
                removed += 1
            except OSError:
                pass
    host = socket.gethostname()
    cur.execute(f"SELECT job_id::text, claimed_by FROM {JOBS} WHERE state = 'running'")
    dead = []
    for job_id, claimed_by in cur.fetchall():
        claim_host, _, pid = (claimed_by or "").rpartition(":")
        if claim_host == host and pid.isdigit() and not _pid_alive(int(pid)):
            dead.append(job_id)
    if dead:
        cur.execute(
            f"UPDATE {JOBS} SET state = 'failed', error = 'interrupted: the backup worker"
            " stopped', finished_at = now() WHERE job_id = ANY(%s::uuid[])",
            (dead,),
        )
    return {"dumps_failed": len(failed_rows), "tmp_removed": removed, "jobs_failed": len(dead)}
