"""Cleaning up after a worker that was killed mid-dump or mid-restore, and
recording what really happened."""

from __future__ import annotations

import socket
import time
from pathlib import Path
from typing import Any

from shared.backup.drill import DRILL_PREFIX
from shared.backup.dump import TMP_SUFFIX
from shared.backup.restore import APPLICATION_NAME, LIST_PREFIX, LIST_SUFFIX
from shared.backup.selfcheck import drop_databases
from shared.db.pool import Database
from shared.infra.pids import pid_alive
from shared.store import contents, dumps, jobs

# How long a killed pg_restore's server session may take to notice its
# client is gone and roll back (or finish committing).
SESSION_GONE_SECONDS = 60.0


def remove_leftovers(dump_dir: Path) -> int:
    removed = 0
    if dump_dir.is_dir():
        patterns = (f"*{TMP_SUFFIX}", f"{LIST_PREFIX}*{LIST_SUFFIX}")
        for leftover in (p for pattern in patterns for p in dump_dir.glob(pattern)):
            try:
                leftover.unlink()
                removed += 1
            except OSError:
                pass
    return removed


def drop_leftover_drills(db: Database) -> None:
    """Scratch databases of a drill killed midway (drills hold the backup
    lock, which we hold now: none is running)."""
    with db.cursor() as cur:
        names = contents.scratch_databases(cur, DRILL_PREFIX)
    if names:
        drop_databases(db.config, names)


def wait_for_restore_sessions(db: Database) -> None:
    deadline = time.monotonic() + SESSION_GONE_SECONDS
    while time.monotonic() < deadline:
        with db.cursor() as cur:  # autocommit: each poll sees fresh activity
            if contents.restore_sessions(cur, APPLICATION_NAME) == 0:
                return
        time.sleep(0.2)


def restore_outcome(db: Database, result: dict[str, Any] | None) -> tuple[str, str | None]:
    """('succeeded', None) if the dead worker's restore committed, else
    ('failed', why). A restore that committed replaced the tables (new oids)."""
    before = (result or {}).get("tables_before")
    if not before:
        return (
            "failed",
            "interrupted: the backup worker stopped before the restore step;"
            " the database is unchanged",
        )
    wait_for_restore_sessions(db)
    with db.cursor() as cur:
        now = contents.table_identities(cur)
    if any(now.get(name) != oid for name, oid in before.items()):
        return "succeeded", None
    return (
        "failed",
        "interrupted: the backup worker stopped during the restore, which rolled back; the database is unchanged",
    )


def recover(db: Database, dump_dir: Path) -> dict[str, int]:
    """IN_PROGRESS rows → FAILED, leftover temporary files removed, jobs
    running in a dead process of this host → their real outcome. Call under
    the backup lock so a live dump elsewhere is not disturbed."""
    with db.cursor() as cur:
        failed_rows = dumps.fail_interrupted(cur)
        running = jobs.running(cur)
    removed = remove_leftovers(dump_dir)
    drop_leftover_drills(db)
    host = socket.gethostname()
    counts = {"dumps_failed": len(failed_rows), "tmp_removed": removed, "jobs_failed": 0}
    counts["restores_committed"] = 0
    for job_id, kind, claimed_by, result in running:
        claim_host, _, pid = (claimed_by or "").rpartition(":")
        if claim_host != host or not pid.isdigit() or pid_alive(int(pid)):
            continue
        if kind == "restore":
            state, error = restore_outcome(db, result)
        else:
            state, error = "failed", "interrupted: the backup worker stopped"
        note: dict[str, Any] = {"recovered": True}
        if state == "succeeded":
            note["note"] = "the restore committed; the worker stopped before recording it"
            counts["restores_committed"] += 1
        else:
            counts["jobs_failed"] += 1
        with db.cursor() as cur:
            jobs.finish(cur, job_id, result=note, error=error, state=state)
    return counts
