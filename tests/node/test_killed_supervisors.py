"""`ksnode up` or its supervisord killed outright (SIGKILL, the OOM killer):
no program lives on as an orphan serving without a supervisor or holding
the API port, and the next `ksnode up` in the same home starts and serves.
Real `ksnode up`, real supervisord, embedded Postgres."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from shared.node.reload import children
from tests.support.node_process import NodeProcess, alive
from tests.support.processes import wait_until


@pytest.fixture()
def node(tmp_path):
    node = NodeProcess.build(tmp_path / "var", {}).start(120)
    yield node
    node.stop()
    left = postmaster_pid(node.home)
    if left is not None and alive(left):  # a failed test must not leave a server running
        os.kill(left, signal.SIGTERM)


def program_pids(node: NodeProcess) -> set[int]:
    """The programs and the api's workers."""
    programs = wait_until(lambda: (p := node.pids()) and len(p) == 3 and p, 30)
    assert programs, node.ksnode("ctl", "status").stdout
    return {*programs.values(), *children(programs["api"])}


def postmaster_pid(home: Path) -> int | None:
    try:
        return int((home / "pg_data" / "postmaster.pid").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def assert_restartable(node: NodeProcess) -> None:
    again = NodeProcess(node.home, node.env)  # same home, same port
    again.start(120)
    try:
        assert again.status()["is_db_connected"]
    finally:
        assert again.stop() == 0
    postmaster = postmaster_pid(node.home)
    assert postmaster is None or not alive(postmaster), "the embedded Postgres was left running"


def test_killed_supervisord_leaves_no_orphan(node):
    pids = program_pids(node)
    supervisord = int((node.home / "run" / "supervisord.pid").read_text())
    os.kill(supervisord, signal.SIGKILL)
    assert wait_until(lambda: not any(alive(pid) for pid in pids), 40), [
        pid for pid in pids if alive(pid)
    ]
    assert wait_until(lambda: node.process.poll() is not None, 60), "ksnode up kept waiting"
    assert_restartable(node)


def test_killed_ksnode_up_leaves_no_orphan(node):
    pids = program_pids(node)
    supervisord = int((node.home / "run" / "supervisord.pid").read_text())
    postmaster = postmaster_pid(node.home)
    node.process.kill()
    node.process.wait(10)
    assert wait_until(lambda: not any(alive(pid) for pid in [supervisord, *pids]), 40), [
        pid for pid in [supervisord, *pids] if alive(pid)
    ]
    # The embedded Postgres outlives it (pg_ctl runs it as a daemon); the
    # next `ksnode up` adopts it and stops it when it stops.
    assert postmaster is not None and alive(postmaster)
    assert_restartable(node)
