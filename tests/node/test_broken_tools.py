"""A pg_dump that prints garbage (also for --version) under a real
supervisord: the worker stays up (no crash loop), every attempt is a FAILED
row, a manual backup fails at once with PG_DUMP_FAILED, /health names the
tools — and fixing the binary heals it without a restart."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from shared.store import heartbeats
from tests.support.backup_helpers import REAL_TOOLS
from tests.support.ops import OPS_HEADERS
from tests.support.processes import terminate, wait_until

PASSWORD = "test-admin-password"
SUPERVISORD = [sys.executable, "-c", "from supervisor.supervisord import main; main()"]
SUPERVISORCTL = [sys.executable, "-c", "from supervisor.supervisorctl import main; main()"]
ROOT = Path(__file__).resolve().parents[2]

CONF = """
[unix_http_server]
file={run}/supervisor.sock

[supervisord]
nodaemon=true
logfile={run}/supervisord.log
pidfile={run}/supervisord.pid
childlogdir={run}

[rpcinterface:supervisor]
supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface

[supervisorctl]
serverurl=unix://{run}/supervisor.sock

[program:backup_worker]
command={python} -m services.backup_worker
directory={root}
autostart=true
autorestart=true
startsecs=1
startretries=100
stopsignal=TERM
stopwaitsecs=30
redirect_stderr=true
stdout_logfile={run}/backup_worker.log
"""


def write_garbage(path: Path) -> None:
    path.write_text('#!/bin/sh\necho "%%% garbage %%% $*"\nexit 0\n')
    path.chmod(0o755)


def write_working(path: Path) -> None:
    tmp = path.with_name(path.name + ".new")
    tmp.write_text(f'#!/bin/sh\nexec {REAL_TOOLS.pg_dump} "$@"\n')
    tmp.chmod(0o755)
    os.replace(tmp, path)


@pytest.fixture()
def supervised(env_for, config, tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    dump_dir = tmp_path / "dump"
    pg_dump = tmp_path / "bin" / "pg_dump"
    pg_dump.parent.mkdir()
    write_garbage(pg_dump)
    conf = run / "supervisord.conf"
    conf.write_text(CONF.format(run=run, python=sys.executable, root=ROOT))
    env = {
        **os.environ,
        **env_for(
            config.db_name,
            DUMP_DIR=str(dump_dir),
            LOG_DIR=str(tmp_path / "logs"),
            PG_DUMP_BIN=str(pg_dump),
            PG_RESTORE_BIN=REAL_TOOLS.pg_restore,
            BACKUP_POLL_SECONDS="0.2",
            BACKUP_TOOLS_RETRY_SECONDS="1",
            BACKUP_RETRY_MIN_SECONDS="2",
            HEARTBEAT_INTERVAL_SECONDS="0.5",
        ),
    }
    process = subprocess.Popen(
        [*SUPERVISORD, "-n", "-c", str(conf)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )

    def ctl_status() -> str:
        return subprocess.run(
            [*SUPERVISORCTL, "-c", str(conf), "status"],
            capture_output=True,
            text=True,
            timeout=30,
        ).stdout

    try:
        yield {"pg_dump": pg_dump, "dump_dir": dump_dir, "status": ctl_status, "run": run}
    finally:
        terminate(process, 40)


def worker_pid(status: str) -> int | None:
    match = re.search(r"^backup_worker\s+RUNNING\s+pid (\d+)", status, re.M)
    return int(match.group(1)) if match else None


def worker_result(db) -> dict:
    with db.cursor() as cur:
        beat = heartbeats.all_beats(cur, db.config.effective_node_id).get("backup_worker") or {}
    return beat.get("last_result") or {}


def history(db) -> list[tuple[str, str | None]]:
    with db.cursor() as cur:
        cur.execute("SELECT status, meta->>'error' FROM \"2_pg_dumps\" ORDER BY created_at")
        return cur.fetchall()


def test_broken_pg_dump_is_a_state_and_fixing_it_heals(supervised, start_api, db):
    with db.cursor() as cur:
        cur.execute('DELETE FROM "2_pg_dumps"')
        cur.execute("DELETE FROM ksn_backup_checks")
    api = start_api(dump_dir=supervised["dump_dir"], backup_job_timeout_seconds=60)
    assert wait_until(lambda: worker_result(db).get("tools_error"), 40), worker_result(db)
    pid = wait_until(lambda: worker_pid(supervised["status"]()), 20)
    assert pid is not None
    # the scheduled attempt is in the history as FAILED, with the reason
    assert wait_until(lambda: any(s == "FAILED" for s, _ in history(db)), 20)
    assert "cannot run" in next(e for s, e in history(db) if s == "FAILED")

    started = time.monotonic()
    r = api.post("/pg_dump/v1/backup", json={"password": PASSWORD})
    answered = time.monotonic() - started
    print(f"manual backup with broken tools answered in {answered:.2f} s")
    assert r.status_code == 500 and r.json()["code"] == "PG_DUMP_FAILED", r.text
    assert "cannot run" in r.json()["msg"]
    assert answered < 10

    health = api.get("/health", headers=OPS_HEADERS)
    assert health.status_code == 200 and health.json()["status"] == "degraded"
    named = {x["reason"]: x for x in health.json()["reasons"]}
    assert "cannot run" in named["backup_tools_unusable"]["detail"]
    assert "backup_failed" in named and "selfcheck_failed" in named
    metrics = api.get("/metrics", headers=OPS_HEADERS).text
    assert 'ksnode_health_reason{reason="backup_tools_unusable"} 1.0' in metrics
    assert "ksnode_backup_tools_usable 0.0" in metrics

    time.sleep(3)  # long enough for a crash loop to show
    assert worker_pid(supervised["status"]()) == pid
    failed = sum(1 for s, _ in history(db) if s == "FAILED")
    assert failed <= 5, history(db)  # back-off, not a loop

    write_working(supervised["pg_dump"])  # the operator installs a working client
    assert wait_until(lambda: not worker_result(db).get("tools_error"), 30), worker_result(db)
    assert wait_until(lambda: any(s == "COMPLETED" for s, _ in history(db)), 30), history(db)
    r = api.post("/pg_dump/v1/backup", json={"password": PASSWORD})
    assert r.status_code == 200, r.text
    with db.cursor() as cur:
        cur.execute("SELECT ok FROM ksn_backup_checks ORDER BY check_id DESC LIMIT 1")
        assert cur.fetchone()[0] is True  # the self-check ran once the tools worked
    reasons = {x["reason"] for x in api.get("/health").json()["reasons"]}
    assert not reasons & {"backup_tools_unusable", "selfcheck_failed", "backup_failed"}
    assert worker_pid(supervised["status"]()) == pid  # healed without a restart
