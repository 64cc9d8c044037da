"""The backup worker program: crash recovery and the startup self-check,
then a loop that runs manual jobs from the API and the daily backup."""

from __future__ import annotations

import logging

from services.backup_worker.errors import BackupError, ToolsUnusable
from services.backup_worker.locks import backup_lock
from services.backup_worker.recovery import recover
from services.backup_worker.selfcheck import run_selfcheck
from services.backup_worker.service import BackupService
from shared.heartbeat import HeartbeatThread, announce_start
from shared.runtime import Runtime, StopFlag, bootstrap, fail, wait_for_database
from shared.store import backup_checks, heartbeats

PROGRAM = "backup_worker"


class BackupWorker:
    def __init__(self, runtime: Runtime, stop: StopFlag):
        self.runtime = runtime
        self.stop = stop
        self.log: logging.Logger = runtime.log
        self.service: BackupService | None = None

    def startup(self) -> None:
        config = self.runtime.config
        config.effective_dump_dir.mkdir(parents=True, exist_ok=True)
        try:
            self.service = BackupService(config, self.runtime.db)
        except ToolsUnusable as exc:
            self.log.error("cannot back up: %s", exc, extra={"event": "backup.tools_unusable"})
            fail(str(exc))
        assert self.service is not None
        with backup_lock(config, wait=True):
            with self.runtime.db.transaction() as cur:
                recovered = recover(cur, config.effective_dump_dir)
        if any(recovered.values()):
            self.log.warning(
                "cleaned up after an interrupted run",
                extra={"event": "backup.recovered", **recovered},
            )
        if config.backup_selfcheck:
            ok, detail = run_selfcheck(config, self.service.tools, config.effective_dump_dir)
            with self.runtime.db.cursor() as cur:
                backup_checks.record(cur, ok, detail)
            level = logging.INFO if ok else logging.ERROR
            self.log.log(
                level,
                "backup self-check %s",
                "passed" if ok else "failed",
                extra={"event": "selfcheck.done", "ok": ok, "detail": detail},
            )

    def run_once(self) -> None:
        assert self.service is not None
        result = None
        try:
            while not self.stop.is_set() and self.service.run_next_job():
                pass
            if not self.stop.is_set():
                done = self.service.backup_if_due()
                if done is not None:
                    result = {"ok": True, "last_backup": done}
        except BackupError as exc:
            result = {"ok": False, "error": str(exc)}
        except Exception as exc:  # noqa: BLE001 - a DB outage must not kill the loop
            self.log.exception("backup loop error", extra={"event": "backup.loop_error"})
            result = {"ok": False, "error": type(exc).__name__}
        if result is not None:
            try:
                with self.runtime.db.cursor() as cur:
                    heartbeats.beat(cur, self.runtime.config.effective_node_id, PROGRAM, result)
            except Exception:  # noqa: BLE001 - recorded next time
                pass


def main() -> None:
    runtime = bootstrap(PROGRAM)
    stop = StopFlag().install()
    wait_for_database(runtime.db, stop, runtime.log)
    announce_start(runtime.db, runtime.config.effective_node_id, PROGRAM)
    HeartbeatThread(
        runtime.db,
        runtime.config.effective_node_id,
        PROGRAM,
        runtime.config.heartbeat_interval_seconds,
        stop,
    ).start()
    worker = BackupWorker(runtime, stop)
    runtime.log.info("backup worker started", extra={"event": "backup_worker.started"})
    worker.startup()
    while not stop.is_set():
        worker.run_once()
        stop.wait(runtime.config.backup_poll_seconds)
    runtime.db.close()
    runtime.log.info("backup worker stopped", extra={"event": "backup_worker.stopped"})
