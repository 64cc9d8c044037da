"""The backup worker program: startup self-check, then a loop that claims
manual jobs and runs the daily dump. The dumping itself lives in dump.py,
scheduling in schedule.py, retention in retention.py (backups issue)."""

from __future__ import annotations

from shared.heartbeat import HeartbeatThread, announce_start
from shared.runtime import Runtime, StopFlag, bootstrap, wait_for_database

PROGRAM = "backup_worker"


class BackupWorker:
    def __init__(self, runtime: Runtime, stop: StopFlag):
        self.runtime = runtime
        self.stop = stop

    def startup(self) -> None:
        """Crash recovery and the self-check (filled in by the backups issue)."""

    def run_once(self) -> None:
        """Claim queued jobs and run the daily dump when due (backups issue)."""


def main() -> None:
    runtime = bootstrap(PROGRAM)
    stop = StopFlag().install()
    wait_for_database(runtime.db, stop, runtime.log)
    announce_start(runtime.db, PROGRAM)
    HeartbeatThread(runtime.db, PROGRAM, runtime.config.heartbeat_interval_seconds, stop).start()
    worker = BackupWorker(runtime, stop)
    runtime.log.info("backup worker started", extra={"event": "backup_worker.started"})
    worker.startup()
    while not stop.is_set():
        worker.run_once()
        stop.wait(runtime.config.backup_poll_seconds)
    runtime.db.close()
    runtime.log.info("backup worker stopped", extra={"event": "backup_worker.stopped"})
