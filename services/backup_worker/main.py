"""The backup worker program: crash recovery and the startup self-check,
then a loop that runs manual jobs from the API, the scheduled backup and the
restore drill.

Unusable tools or a failing self-check are states, not crashes: the worker
stays up, says so in its heartbeat (and so in /health and /metrics), fails
jobs at once with the reason, and heals when the tools work again."""

from __future__ import annotations

import logging
from typing import Any

from services.backup_worker.jobrunner import run_next_job
from services.backup_worker.recovery import recover
from shared.backup.errors import BackupError, SelfcheckNotRun
from shared.backup.locks import backup_lock
from shared.backup.progress import LogProgress
from shared.backup.selfcheck import run_selfcheck
from shared.backup.service import BackupService
from shared.infra.errortext import first_line
from shared.program.runtime import Runtime, StopFlag, run
from shared.store import backup_checks, heartbeats

PROGRAM = "backup_worker"


class BackupWorker:
    def __init__(self, runtime: Runtime, stop: StopFlag):
        self.runtime = runtime
        self.stop = stop
        self.log: logging.Logger = runtime.log
        self.service: BackupService | None = None
        self.selfcheck_pending = runtime.config.backup_selfcheck
        # what the heartbeat's last_result says (read by /health and /metrics)
        self.state: dict[str, Any] = {"tools_error": None}
        self._written: dict[str, Any] | None = None
        self._selfcheck_said: str | None = None  # the last self-check reason logged

    def startup(self) -> None:
        config = self.runtime.config
        try:
            config.effective_dump_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:  # a state like any unusable DUMP_DIR: each backup says why
            self.log.error(
                "cannot create DUMP_DIR",
                extra={"event": "backup.dump_dir_unusable", "error": first_line(exc, 300)},
            )
        self.service = BackupService(config, self.runtime.db, progress=LogProgress(self.log))
        with backup_lock(config, wait=True):
            recovered = recover(self.runtime.db, config.effective_dump_dir)
        if any(recovered.values()):
            self.log.warning(
                "cleaned up after an interrupted run",
                extra={"event": "backup.recovered", **recovered},
            )
        self.selfcheck_if_pending()
        self.publish()

    def selfcheck_if_pending(self) -> None:
        """The startup self-check, once the tools are usable (until then its
        recorded result says why it could not run)."""
        assert self.service is not None
        if not self.selfcheck_pending:
            return
        config = self.runtime.config
        detail: str | None
        if self.service.tools is None:
            ok, detail = False, f"not run: {self.service.tools_error}"
        else:
            try:
                ok, detail = run_selfcheck(config, self.service.tools, config.effective_dump_dir)
                self.selfcheck_pending = False
            except SelfcheckNotRun as exc:  # still pending: run_once tries again
                ok, detail = False, f"not run: {exc}"
        with self.runtime.db.cursor() as cur:
            # One row (and one log line) per reason it could not run, not one per try.
            if not self.selfcheck_pending or backup_checks.latest(cur)[1] != detail:
                backup_checks.record(cur, ok, detail)
            elif detail == self._selfcheck_said:
                return
        self._selfcheck_said = detail
        self.log.log(
            logging.INFO if ok else logging.ERROR,
            "backup self-check %s",
            "passed" if ok else "failed",
            extra={"event": "selfcheck.done", "ok": ok, "detail": detail},
        )

    def publish(self) -> None:
        """Write the state into the heartbeat when it changed."""
        assert self.service is not None
        self.state["tools_error"] = self.service.tools_error
        if self.state == self._written:
            return
        try:
            with self.runtime.db.cursor() as cur:
                heartbeats.beat(
                    cur, self.runtime.config.effective_node_id, PROGRAM, dict(self.state)
                )
            self._written = dict(self.state)
        except Exception:  # noqa: BLE001 - written next time
            pass

    def run_once(self) -> None:
        assert self.service is not None
        try:
            self.service.refresh_tools()
            # From the state, not from a change seen here: the tools may also
            # come back in a job's or a scheduled backup's own refresh.
            if self.selfcheck_pending and self.service.tools is not None:
                self.selfcheck_if_pending()
            while not self.stop.is_set() and run_next_job(self.service):
                pass
            if not self.stop.is_set():
                done = self.service.backup_if_due()
                if done is not None:
                    self.state.update(ok=True, error=None, last_backup=done)
            if not self.stop.is_set():
                drill = self.service.drill_if_due()
                if drill is not None:
                    self.state["last_drill"] = drill
        except BackupError as exc:
            self.state.update(ok=False, error=str(exc))
        except Exception as exc:  # noqa: BLE001 - a DB outage must not kill the loop
            self.log.exception("backup loop error", extra={"event": "backup.loop_error"})
            self.state.update(ok=False, error=type(exc).__name__)
        self.publish()


def main() -> None:
    run(
        PROGRAM,
        BackupWorker,
        every=lambda config: config.backup_poll_seconds,
        label="backup worker",
    )
