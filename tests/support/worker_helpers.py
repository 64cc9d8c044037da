"""A real backup worker process (python -m services.backup_worker) for
tests, and small helpers around it."""

from __future__ import annotations

import os
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path

from tests.support.processes import terminate


def worker_env(env_for, dbname: str, tmp_path: Path, **overrides: str) -> dict[str, str]:
    return {
        **os.environ,
        **env_for(
            dbname,
            BACKUP_SELFCHECK="false",
            BACKUP_POLL_SECONDS="0.1",
            HEARTBEAT_INTERVAL_SECONDS="0.5",
            BACKUP_DRILL_INTERVAL_SECONDS="0",
            LOG_DIR=str(tmp_path / "logs"),
            **overrides,
        ),
    }


@contextmanager
def worker_process(env: dict[str, str]):
    process = subprocess.Popen(
        [sys.executable, "-m", "services.backup_worker"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        yield process
    finally:
        terminate(process, 30)


def processes_running(fragment: str) -> list[int]:
    """Pids whose command line contains ``fragment`` (not zombies)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            state = (entry / "stat").read_text().split(")")[-1].split()[0]
        except OSError:
            continue
        if fragment in cmdline and state != "Z":
            found.append(int(entry.name))
    return found


def count_shares(db) -> int:
    with db.cursor() as cur:
        cur.execute('SELECT count(*) FROM "2_key_shares"')
        return cur.fetchone()[0]
