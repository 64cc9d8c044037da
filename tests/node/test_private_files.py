"""Dumps are 0600 in a 0700 folder (safety dumps too), log files at most
0640, and a start finds and tightens what others could read."""

from __future__ import annotations

import json
import logging
import stat
from pathlib import Path

from shared.infra.logging import configure_logging
from shared.infra.privatefiles import check_at_start, warn_if_others_may_read


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_backup_and_restore_leave_only_private_dumps(service, dump_dir):
    dump_dir.chmod(0o755)  # as an operator's `mkdir` leaves it
    result = service.backup_now()
    dump = Path(result["dumpPath"])
    assert mode(dump_dir) == 0o700
    assert mode(dump) == 0o600
    restored = service.restore_now(str(dump))
    safety = Path(restored["safety_dump_path"])
    assert safety.name.startswith("pre_restore_") and mode(safety) == 0o600
    assert mode(dump_dir) == 0o700
    assert {mode(p) for p in dump_dir.iterdir()} == {0o600}


def test_a_missing_dump_folder_is_created_private(service, dump_dir):
    dump_dir.rmdir()
    service.backup_now()
    assert mode(dump_dir) == 0o700


def test_start_tightens_a_readable_dump_folder_and_files_once(tmp_path, caplog):
    dumps, logs = tmp_path / "dump", tmp_path / "logs"
    dumps.mkdir(mode=0o755)
    (logs / "supervisor").mkdir(parents=True)
    old_dump = dumps / "key_share_node_2026-01-01T00-00-00-000Z.dump"
    old_dump.write_bytes(b"PGDMP")
    old_dump.chmod(0o644)
    log_file = logs / "ksnode-2026-01-01.log"
    log_file.write_text("{}\n")
    log_file.chmod(0o666)
    supervisor_log = logs / "supervisor" / "api-stdout.log"
    supervisor_log.write_text("x\n")
    supervisor_log.chmod(0o644)
    with caplog.at_level(logging.WARNING, logger="ksnode"):
        done = check_at_start(dumps, logs)
    assert mode(dumps) == 0o700 and mode(old_dump) == 0o600
    assert mode(log_file) == 0o640 and mode(supervisor_log) == 0o640
    assert done["refused"] == []
    events = [r.event for r in caplog.records]
    assert events == ["files.dumps_tightened", "files.logs_tightened"]
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="ksnode"):
        check_at_start(dumps, logs)
    assert caplog.records == []  # nothing left to say at the next start


def test_log_files_are_not_readable_by_others(tmp_path):
    log = configure_logging("api", tmp_path, "info", stdout=False)
    log.info("hello", extra={"event": "t"})
    (path,) = tmp_path.glob("ksnode-*.log")
    assert mode(path) & 0o037 == 0  # at most 0640
    assert json.loads(path.read_text())["message"] == "hello"
    configure_logging("api", None, "info", stdout=False)  # close the file handler


def test_a_running_node_keeps_dumps_and_logs_private(tmp_path):
    """`ksnode up`: the first backup's dump and every log file, supervisord's
    included, are private (umask 027 for supervisord and its programs)."""
    import os
    import signal
    import subprocess

    import requests

    from shared.db.embedded import free_port
    from tests.support.node_process import KSNODE
    from tests.support.processes import wait_until

    home, port = tmp_path / "var", free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DB_", "PORT"))}
    env.update({"KSNODE_HOME": str(home), "PORT": str(port), "HOST": "127.0.0.1"})
    process = subprocess.Popen(
        [*KSNODE, "up"], env=env, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT
    )
    try:

        def backed_up():
            try:
                status = requests.get(f"http://127.0.0.1:{port}/status", timeout=1).json()
            except (requests.RequestException, ValueError):
                return None
            return status["latest_backup_time"]

        assert wait_until(backed_up, 90)
        dumps = list((home / "dump").glob("*.dump"))
        assert dumps and mode(home / "dump") == 0o700
        assert {mode(p) for p in dumps} == {0o600}
        captures = home / ("run" if os.geteuid() == 0 else "logs") / "supervisor"
        logs = [p for p in (home / "logs").rglob("*") if p.is_file()]
        logs += [p for p in captures.iterdir() if p.is_file()]
        assert any(p.parent.name == "supervisor" for p in logs)
        assert {p.name: mode(p) & 0o037 for p in logs} == {p.name: 0 for p in logs}
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(90) == 0


def test_a_secret_file_others_may_read_is_named_in_a_warning(tmp_path, caplog):
    private, shared = tmp_path / "private.txt", tmp_path / "shared.txt"
    for path, mode in ((private, 0o400), (shared, 0o644)):
        path.write_text("hunter2-secret-content")
        path.chmod(mode)
    with caplog.at_level(logging.WARNING, logger="ksnode"):
        named = warn_if_others_may_read([private, shared, tmp_path / "missing.txt"])
    assert named == [str(shared)]
    [record] = [r for r in caplog.records if getattr(r, "event", "") == "secret.not_private"]
    assert record.path == str(shared) and record.mode == "0644"
    assert "hunter2" not in caplog.text  # the path and mode, never the content
    assert stat.S_IMODE(shared.stat().st_mode) == 0o644  # named, not changed


def test_the_secret_warning_names_the_fix_for_where_the_node_runs(tmp_path, caplog, monkeypatch):
    shared = tmp_path / "shared.txt"
    shared.write_text("s")
    shared.chmod(0o644)
    monkeypatch.delenv("KSNODE_IN_CONTAINER", raising=False)
    with caplog.at_level(logging.WARNING, logger="ksnode"):
        warn_if_others_may_read([shared])
    assert f"chmod 0400 {shared}" in caplog.text and "chown 1000" not in caplog.text
    caplog.clear()
    # In the image (docker/Dockerfile sets KSNODE_IN_CONTAINER=1) a root-owned
    # 0400 file would stop the node: the fix names uid 1000 on the host.
    monkeypatch.setenv("KSNODE_IN_CONTAINER", "1")
    with caplog.at_level(logging.WARNING, logger="ksnode"):
        warn_if_others_may_read([shared])
    assert "chown 1000:1000" in caplog.text and "on the host" in caplog.text


def test_a_fresh_home_gets_a_private_dump_folder_without_a_warning(tmp_path, caplog):
    from shared.config import load_config
    from shared.node.launcher import prepare_folders

    config = load_config({"KSNODE_HOME": str(tmp_path / "home")})
    with caplog.at_level(logging.INFO, logger="ksnode"):
        prepare_folders(config)
    assert mode(config.effective_dump_dir) == 0o700
    assert "files.dumps_tightened" not in [getattr(r, "event", "") for r in caplog.records]
