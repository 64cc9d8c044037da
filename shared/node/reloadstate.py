"""What the api program tells `ksnode reload` when it refuses a reload.

On SIGHUP the api's pool parent first checks that the code on disk starts
(shared/node/codecheck.py). When it does not, the parent keeps its workers
serving the old code and writes why into
``<run dir>/api/api-reload-refused.json`` (atomically: temp file, then
rename); `ksnode reload` reads it to fail at once with that reason instead
of waiting for a handover that never comes. The ``api`` folder is the
programs' (``ksnode`` when the node was started as root); the run folder
itself is root's then (shared/node/programuser.py).
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from pathlib import Path

from shared.infra.safefiles import open_regular

REFUSAL_FILE = "api-reload-refused.json"
PROGRAMS_FOLDER = "api"  # of the run folder: the one the programs write to


def refusal_path(run_dir: Path) -> Path:
    return run_dir / PROGRAMS_FOLDER / REFUSAL_FILE


def record_refusal(run_dir: Path, pid: int, reason: str) -> None:
    path = refusal_path(run_dir)
    tmp = path.with_name(f".{REFUSAL_FILE}.{os.getpid()}")
    with contextlib.suppress(OSError):  # the log line says it anyway
        path.parent.mkdir(mode=0o700, exist_ok=True)
        tmp.write_text(json.dumps({"pid": pid, "at": time.time(), "reason": reason}))
        os.replace(tmp, path)


def refusal_since(run_dir: Path, pid: int, since: float) -> str | None:
    """The reason of a refusal by ``pid`` recorded at or after ``since`` (a
    time.time()), else None."""
    try:
        fd = open_regular(refusal_path(run_dir), os.O_RDONLY)  # `ksnode reload` may be root
        with os.fdopen(fd, "rb") as handle:
            record = json.loads(handle.read(64 * 1024))
    except (OSError, ValueError):
        return None
    if not isinstance(record, dict) or record.get("pid") != pid:
        return None
    at = record.get("at")
    if not isinstance(at, (int, float)) or at < since:
        return None
    return str(record.get("reason") or "the code on disk does not start")
