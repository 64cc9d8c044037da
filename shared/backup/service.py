"""Backups and restores as the worker (and the CLI) perform them: the
``2_pg_dumps`` row lifecycle around a verified dump, retention after
success, restores, drills, and manual jobs from the API."""

from __future__ import annotations

import logging
import time
from contextlib import ExitStack
from typing import Any

import psycopg2

from shared.backup import schedule
from shared.backup.drill import run_drill
from shared.backup.dump import DumpFile, Progress, dump_database
from shared.backup.errors import BackupError, BusyError, Expired, ToolsUnusable
from shared.backup.locks import backup_lock
from shared.backup.paths import resolve_dump_path
from shared.backup.pgtools import PgTools, find_tools
from shared.backup.restore import restore_database
from shared.backup.retention import apply_retention, held_here
from shared.config import Config
from shared.db.pool import Database, DatabaseUnavailable
from shared.store import contents, drills, dumps, jobs

log = logging.getLogger("backup_worker")


def server_major(db: Database) -> int:
    with db.cursor() as cur:
        cur.execute("SHOW server_version_num")
        return int(cur.fetchone()[0]) // 10000


def dump_meta(archive: DumpFile, node_id: str, **extra: Any) -> dict[str, Any]:
    meta: dict[str, Any] = {
        "dump_size": archive.size,
        "dump_duration": archive.duration,
        "sha256": archive.sha256,
        "verified": True,
        "node_id": node_id,  # the node whose DUMP_DIR holds the file
    }
    if archive.tables is not None:
        meta["tables"] = archive.tables
    meta.update(extra)
    return meta


class BackupService:
    def __init__(
        self,
        config: Config,
        db: Database,
        tools: PgTools | None = None,
        progress: Progress | None = None,
    ):
        self.config = config
        self.db = db
        self.dump_dir = config.effective_dump_dir
        self.progress = progress
        self.tools: PgTools | None = tools
        self.tools_error: str | None = None
        self._tools_checked = float("-inf")
        self._fixed_tools = tools is not None
        if tools is None:
            self.refresh_tools(force=True)

    # -- the tools: a state, not a crash -------------------------------------
    def refresh_tools(self, *, force: bool = False) -> None:
        """Find pg_dump/pg_restore again when they were unusable (every
        BACKUP_TOOLS_RETRY_SECONDS, or now with ``force``); log on change only."""
        if self._fixed_tools or (self.tools is not None and not force):
            return
        now = time.monotonic()
        if not force and now - self._tools_checked < self.config.backup_tools_retry_seconds:
            return
        try:
            tools, error = find_tools(self.config, server_major(self.db)), None
        except ToolsUnusable as exc:
            tools, error = None, str(exc)
        except (psycopg2.Error, DatabaseUnavailable):
            return  # the database is the problem; try again later
        self._tools_checked = now
        if error != self.tools_error or (tools is None) != (self.tools is None):
            # On tools being None, not on the message: an exception with an
            # empty message would otherwise take the "usable" branch and fail.
            if tools is None:
                log.error(
                    "cannot back up: %s",
                    error,
                    extra={"event": "backup.tools_unusable", "error": error},
                )
            else:
                log.info(
                    "backup tools usable",
                    extra={"event": "backup.tools_usable", "pg_dump": tools.pg_dump},
                )
        self.tools, self.tools_error = tools, error

    def require_tools(self) -> PgTools:
        if self.tools is None:
            raise ToolsUnusable(self.tools_error or "pg_dump/pg_restore not found")
        return self.tools

    # -- one backup ----------------------------------------------------------
    def _backup_locked(self) -> dict[str, Any]:
        with self.db.cursor() as cur:
            dump_id, _ = dumps.start(cur)
        try:
            archive = dump_database(
                self.config,
                self.require_tools(),
                self.dump_dir,
                summarize=True,
                progress=self.progress,
            )
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
        with self.db.cursor() as cur:
            dumps.complete(
                cur, dump_id, str(archive.path), dump_meta(archive, self.config.effective_node_id)
            )
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

    def backup_now(self, until: float | None = None) -> dict[str, Any]:
        """A backup now, waiting for any other one to finish first (at most
        until ``until``, a time.monotonic() deadline)."""
        try:
            with backup_lock(self.config, wait=True, until=until):
                return self._backup_locked()
        except BusyError:
            raise Expired(
                "not started: another backup or restore held the worker until the deadline"
            ) from None

    def _due_in(self) -> float:
        c = self.config
        with self.db.cursor() as cur:
            return schedule.seconds_until_due(
                cur,
                c.backup_interval_seconds,
                retry_min=c.backup_retry_min_seconds,
                retry_max=c.backup_retry_max_seconds,
            )

    def backup_if_due(self) -> dict[str, Any] | None:
        """The scheduled backup when due (retried with back-off after a
        failure); None when not due or another runner has it."""
        if self._due_in() > 0:
            return None
        self.refresh_tools()
        try:
            with backup_lock(self.config, wait=False):
                if self._due_in() > 0:  # re-check under the lock
                    return None
                return self._backup_locked()
        except BusyError:
            return None

    # -- restore ---------------------------------------------------------------
    def restore_now(
        self, raw_path: str, *, job_id: str | None = None, until: float | None = None
    ) -> dict[str, Any]:
        path = resolve_dump_path(raw_path, self.dump_dir)
        tools = self.require_tools()
        with ExitStack() as held:
            try:
                held.enter_context(backup_lock(self.config, wait=True, until=until))
            except BusyError:
                raise Expired(
                    "not started: another backup or restore held the worker until the deadline;"
                    " database unchanged"
                ) from None
            safety = restore_database(
                self.config,
                tools,
                path,
                self.dump_dir,
                before_restore=lambda s: self._before_restore(s, job_id, until),
                progress=self.progress,
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

    def _before_restore(self, safety: DumpFile, job_id: str | None, until: float | None) -> None:
        """The safety dump goes into the history at once (it exists whatever
        happens next); the job notes what recovery needs to tell later whether
        the restore committed; past the deadline the restore is not started."""
        with self.db.transaction() as cur:
            dump_id, _ = dumps.start(cur)
            dumps.complete(
                cur,
                dump_id,
                str(safety.path),
                dump_meta(safety, self.config.effective_node_id, reason="pre-restore safety dump"),
            )
            if job_id is not None:
                jobs.note(
                    cur,
                    job_id,
                    {
                        "safety_dump_path": str(safety.path),
                        "tables_before": contents.table_identities(cur),
                    },
                )
        if until is not None and time.monotonic() >= until:
            raise Expired(
                "not started: the deadline passed before the restore step; database unchanged"
                f" (safety dump {safety.path} kept)"
            )

    # -- restore drills ------------------------------------------------------------
    def drill_now(self) -> dict[str, Any]:
        """Restore the newest COMPLETED dump into a scratch database and compare."""
        tools = self.require_tools()
        with backup_lock(self.config, wait=True):
            row = self._newest_drillable()
            started = time.monotonic()
            detail: str | None
            if row is None:
                ok, detail = False, "no COMPLETED dump with recorded table checksums to drill"
            else:
                ok, detail = run_drill(self.config, tools, row, self.dump_dir, self.progress)
            seconds = round(time.monotonic() - started, 3)
            with self.db.cursor() as cur:
                drills.record(cur, row.dump_id if row else None, ok, detail, seconds)
        outcome = {"ok": ok, "detail": detail, "seconds": seconds}
        outcome["dump_path"] = row.dump_path if row else None
        log.log(
            logging.INFO if ok else logging.ERROR,
            "restore drill %s",
            "passed" if ok else "failed",
            extra={"event": "drill.done", **outcome},
        )
        return outcome

    def _newest_drillable(self) -> dumps.DumpRow | None:
        """The newest dump with recorded checksums that this node holds."""
        node_id = self.config.effective_node_id
        with self.db.cursor() as cur:
            rows = dumps.drillable(cur)
        return next((r for r in rows if held_here(r, node_id, self.dump_dir)), None)

    def drill_if_due(self) -> dict[str, Any] | None:
        if self.tools is None:
            return None
        with self.db.cursor() as cur:
            if not schedule.drill_due(cur, self.config.backup_drill_interval_seconds):
                return None
        if self._newest_drillable() is None:
            return None
        return self.drill_now()
