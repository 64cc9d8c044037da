"""`ksnode ctl tail [-f] PROGRAM` shows that program's output (supervisord
keeps a capture file per program) while `ksnode up`'s own output still
carries every program's lines (the launcher follows those files)."""

from __future__ import annotations

import json
import os
import subprocess
import threading

import pytest

from tests.conftest import create_database
from tests.support.node_process import KSNODE, ROOT, NodeProcess, database_env
from tests.support.processes import wait_until


@pytest.fixture(scope="module")
def node(pg_server, tmp_path_factory):
    db_env = database_env(pg_server, create_database(pg_server))
    node = NodeProcess.build(tmp_path_factory.mktemp("tail") / "var", db_env).start()
    yield node
    assert node.stop() == 0


def programs_in(text: str) -> dict[str, list[str]]:
    """JSON lines of ``text`` by their ``program``."""
    found: dict[str, list[str]] = {}
    for line in text.splitlines():
        try:
            program = json.loads(line)["program"]
        except (ValueError, KeyError, TypeError):
            continue
        found.setdefault(program, []).append(line)
    return found


def test_ctl_tail_prints_that_programs_lines(node):
    def tail() -> dict[str, list[str]] | None:
        result = node.ksnode("ctl", "tail", "backup_worker", timeout=30)
        found = programs_in(result.stdout)
        return found if "backup_worker" in found else None

    found = wait_until(tail, 30, interval=0.5)
    assert found is not None, node.ksnode("ctl", "tail", "backup_worker").stdout
    assert set(found) == {"backup_worker"}


def test_foreground_still_carries_every_programs_lines(node):
    wanted = {"ksnode", "supervisord", "api", "backup_worker", "reporter"}
    assert wait_until(lambda: wanted <= set(programs_in(node.up_output())), 30), node.up_output()
    # each line in the capture file reached the foreground once
    # started as root, supervisord's files are in the root-only run folder
    folder = node.home / "run" if os.geteuid() == 0 else node.home / "logs"
    capture = (folder / "supervisor" / "backup_worker.log").read_text().splitlines()

    def relayed() -> list[str] | None:  # the follower polls the file every 0.2 s
        shown = node.up_output().splitlines()
        return shown if all(line in shown for line in capture) else None

    shown = wait_until(relayed, 10)
    assert shown is not None, "capture lines missing from the foreground output"
    for line in capture:
        assert shown.count(line) == 1, line


def test_ctl_tail_f_follows_new_lines(node):
    follower = subprocess.Popen(
        [*KSNODE, "ctl", "tail", "-f", "backup_worker"],
        env=node.env,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    received: list[bytes] = []
    threading.Thread(
        target=lambda: received.extend(iter(follower.stdout.readline, b"")), daemon=True
    ).start()
    try:
        # a restart makes the worker log its stop and start lines
        assert "backup_worker: started" in node.ksnode("ctl", "restart", "backup_worker").stdout

        def restarted_lines() -> bool:
            text = b"".join(received).decode(errors="replace")
            return "backup_worker.stopped" in text

        assert wait_until(restarted_lines, 30, interval=0.2), b"".join(received)
    finally:
        follower.kill()
        follower.wait(10)
