"""Fixtures for backup tests: the service on the module's database, a
worker thread serving API jobs, and fake pg_dump programs."""

from __future__ import annotations

import threading
from pathlib import Path

from services.backup_worker.jobrunner import run_next_job
from shared.backup.pgtools import PgTools
from shared.backup.service import BackupService
from shared.db.embedded import bundled_bin_dir
from shared.store import heartbeats
from tests.conftest import admin_connection

BIN = bundled_bin_dir()
REAL_TOOLS = PgTools(str(BIN / "pg_dump"), str(BIN / "pg_restore"), 18)


def fake_pg_dump(folder: Path, body: str) -> str:
    """A pg_dump stand-in: answers --version like the real one, else runs ``body``
    (bash, with the output file in $OUT)."""
    script = folder / "fake_pg_dump.sh"
    script.write_text(
        "#!/usr/bin/env bash\n"
        'if [ "$1" = "--version" ]; then echo "pg_dump (PostgreSQL) 18.0"; exit 0; fi\n'
        'OUT=""; prev=""; for a in "$@"; do [ "$prev" = "--file" ] && OUT="$a"; prev="$a"; done\n'
        + body
        + "\n"
    )
    script.chmod(0o755)
    return str(script)


def set_worker_beat(db, config, *, age_seconds: float) -> None:
    """This node's backup worker beat ``age_seconds`` ago (0: a beat now)."""
    node_id = config.effective_node_id
    with db.cursor() as cur:
        heartbeats.beat(cur, node_id, "backup_worker")
        if age_seconds:
            cur.execute(
                "UPDATE ksn_node_heartbeats SET beat_at = now() - make_interval(secs => %s)"
                " WHERE node_id = %s AND program = 'backup_worker'",
                (age_seconds, node_id),
            )


class JobWorker:
    """The backup worker's job loop in a thread (what the API waits for),
    with its heartbeat beaten from another thread, as the real worker's (the
    API refuses a job at once when this node's worker does not beat)."""

    def __init__(self, service: BackupService, *, beating: bool = True):
        self.service = service
        self.beating = beating  # False: a worker whose heartbeat thread is stuck
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.beater = threading.Thread(target=self.beat, daemon=True)

    def run(self):
        while not self.stop.is_set():
            if not run_next_job(self.service):
                self.stop.wait(0.05)

    def beat(self):
        while not self.stop.wait(1.0):
            set_worker_beat(self.service.db, self.service.config, age_seconds=0)

    def __enter__(self):
        if self.beating:  # beating before the first request
            set_worker_beat(self.service.db, self.service.config, age_seconds=0)
            self.beater.start()
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join(30)
        if self.beating:
            self.beater.join(30)


def databases_like(pg_server, pattern: str) -> list[str]:
    """Names of the test server's databases matching the LIKE ``pattern``
    (the scratch databases a drill or a self-check must have dropped)."""
    conn = admin_connection(pg_server)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT datname FROM pg_database WHERE datname LIKE %s", (pattern,))
            return [r[0] for r in cur.fetchall()]
    finally:
        conn.close()
