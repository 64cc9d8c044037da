"""Backups and restores as the worker (and the CLI) perform them: the
``2_pg_dumps`` row lifecycle around a verified dump, retention after
success, restores, and manual jobs from the API."""

from __future__ import annotations

import logging
from typing import Any

from services.backup_worker import schedule
from services.backup_worker.dump import dump_database
from services.backup_worker.errors import BackupError, BusyError
from services.backup_worker.locks import backup_lock
from services.backup_worker.pgtools import PgTools, find_tools
from services.backup_worker.restore import restore_database
from services.backup_worker.retention import apply_retention
from shared.config import Config
from shared.db import Database
from shared.dumppaths import UnsafeDumpPath, resolve_dump_path
from shared.store import dumps, jobs

log = logging.getLogger("backup_worker")


def server_major(db: Database) -> int:
    with db.cursor() as cur:
        cur.execute("SHOW server_version_num")
        return int(cur.fetchone()[0]) // 10000


class BackupService:
    def __init__(self, config: Config, db: Database, tools: PgTools | None = None):
        self.config = config
        self.db = db
        self.dump_dir = config.effective_dump_dir
        self.tools = tools or find_tools(config, server_major(db))

    # -- one backup ----------------------------------------------------------
    def _backup_locked(self) -> dict[str, Any]:
        with self.db.cursor() as cur:
            dump_id, _ = dumps.start(cur)
        try:
            archive = dump_database(self.config, self.tools, self.dump_dir)
        except BackupError as exc:
            with self.db.cursor() as cur:
                dumps.fail(cur, dump_id, str(exc))
            log.error(
                "backup failed",
                extra={"event": "backup.failed", "dump_id": dump_id, "error": str(exc)},
            )
            raise
        except BaseException:
            with self.db.cursor() as cur:
                dumps.fail(cur, dump_id, "interrupted")
            raise
        meta = {
            "dump_size": archive.size,
            "dump_duration": archive.duration,
            "sha256": archive.sha256,
            "verified": True,
            "node_id": self.config.effective_node_id,  # the node whose DUMP_DIR holds the file
        }
        with self.db.cursor() as cur:
            dumps.complete(cur, dump_id, str(archive.path), meta)
        log.info(
            "backup completed",
            extra={
                "event": "backup.completed",
                "dump_id": dump_id,
                "path": str(archive.path),
                "bytes": archive.size,
                "seconds": archive.duration,
            },
        )
        with self.db.transaction() as cur:
            deleted = apply_retention(
                cur,
                self.config.backup_retention_days,
                self.config.backup_min_keep,
                node_id=self.config.effective_node_id,
                dump_dir=self.dump_dir,
            )
        if deleted:
            log.info(
                "old backups deleted", extra={"event": "retention.deleted", "dump_ids": deleted}
            )
        return {
            "dumpId": dump_id,
            "dumpPath": str(archive.path),
            "dumpSize": archive.size,
            "dumpDuration": archive.duration,
        }

    def backup_now(self) -> dict[str, Any]:
        """A backup now, waiting for any other one to finish first."""
        with backup_lock(self.config, wait=True):
            return self._backup_locked()

    def backup_if_due(self) -> dict[str, Any] | None:
        """The daily backup when due; None when not due or another runner has it."""
        with self.db.cursor() as cur:
            if schedule.seconds_until_due(cur, self.config.backup_interval_seconds) > 0:
                return None
        try:
            with backup_lock(self.config, wait=False):
                with self.db.cursor() as cur:  # re-check under the lock
                    if schedule.seconds_until_due(cur, self.config.backup_interval_seconds) > 0:
                        return None
                return self._backup_locked()
        except BusyError:
            return None

    # -- restore ---------------------------------------------------------------
    def restore_now(self, raw_path: str) -> dict[str, Any]:
        path = resolve_dump_path(raw_path, self.dump_dir)
        with backup_lock(self.config, wait=True):
            safety = restore_database(self.config, self.tools, path, self.dump_dir)
            with self.db.cursor() as cur:
                dump_id, _ = dumps.start(cur)
                dumps.complete(
                    cur,
                    dump_id,
                    str(safety.path),
                    {
                        "dump_size": safety.size,
                        "dump_duration": safety.duration,
                        "sha256": safety.sha256,
                        "verified": True,
                        "reason": "pre-restore safety dump",
                        "node_id": self.config.effective_node_id,
                    },
                )
        log.warning(
            "database restored",
            extra={
                "event": "restore.completed",
                "path": str(path),
                "safety_dump": str(safety.path),
            },
        )
        return {"dump_path": raw_path, "safety_dump_path": str(safety.path)}

    # -- manual jobs from the API --------------------------------------------------
    def run_next_job(self) -> bool:
        """Claim and run one queued job; False when there was none."""
        with self.db.cursor() as cur:
            job = jobs.claim(cur, self.config.effective_node_id)
        if job is None:
            return False
        log.info(
            "job claimed", extra={"event": "job.claimed", "job_id": job.job_id, "kind": job.kind}
        )
        try:
            if job.kind == "backup":
                result = self.backup_now()
            else:
                result = self.restore_now(str(job.params.get("dump_path", "")))
        except (BackupError, UnsafeDumpPath) as exc:
            self._finish(job.job_id, error=str(exc))
            return True
        except Exception as exc:  # noqa: BLE001 - the job must end, the worker must live
            log.exception("job crashed", extra={"event": "job.crashed", "job_id": job.job_id})
            self._finish(job.job_id, error=f"unexpected error: {type(exc).__name__}")
            return True
        self._finish(job.job_id, result=result)
        return True

    def _finish(self, job_id: str, **outcome: Any) -> None:
        with self.db.cursor() as cur:
            jobs.finish(cur, job_id, **outcome)
