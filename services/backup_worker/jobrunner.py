"""Manual jobs from the API, run by the backup worker: claimed within their
deadline, run with that deadline, finished with a compare-and-set — a job
that could not start in time is ``expired``, never run late."""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any

from shared.backup.errors import BackupError, Expired
from shared.backup.paths import UnsafeDumpPath
from shared.store import jobs

if TYPE_CHECKING:
    from shared.backup.service import BackupService

log = logging.getLogger("backup_worker")


def run_next_job(service: BackupService) -> bool:
    """Claim and run one queued job; False when there was none."""
    with service.db.cursor() as cur:
        for job_id in jobs.expire_overdue(cur):
            log.warning(
                "job expired before it could start",
                extra={"event": "job.expired", "job_id": job_id},
            )
        job = jobs.claim(cur, service.config.effective_node_id)
    if job is None:
        return False
    log.info("job claimed", extra={"event": "job.claimed", "job_id": job.job_id, "kind": job.kind})
    until = None
    if job.seconds_left is not None:
        until = time.monotonic() + job.seconds_left - jobs.START_MARGIN_SECONDS
    try:
        if until is not None and time.monotonic() >= until:
            raise Expired("not started: its deadline had passed")
        if service.tools is None:
            service.refresh_tools(force=True)  # a fix heals the next request at once
        if job.kind == "backup":
            result = service.backup_now(until=until)
        else:
            raw = str(job.params.get("dump_path", ""))
            result = service.restore_now(raw, job_id=job.job_id, until=until)
    except Expired as exc:
        log.warning(
            "job expired", extra={"event": "job.expired", "job_id": job.job_id, "error": str(exc)}
        )
        _finish(service, job.job_id, error=str(exc), state="expired")
        return True
    except (BackupError, UnsafeDumpPath) as exc:
        _finish(service, job.job_id, error=str(exc))
        return True
    except Exception as exc:  # noqa: BLE001 - the job must end, the worker must live
        log.exception("job crashed", extra={"event": "job.crashed", "job_id": job.job_id})
        _finish(service, job.job_id, error=f"unexpected error: {type(exc).__name__}")
        return True
    _finish(service, job.job_id, result=result)
    return True


def _finish(service: BackupService, job_id: str, **outcome: Any) -> None:
    with service.db.cursor() as cur:
        jobs.finish(cur, job_id, **outcome)
