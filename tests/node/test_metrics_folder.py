"""The API workers' Prometheus sample folder lives in /dev/shm (a full disk
must not SIGBUS them). It is made again when a worker starts, should it be
gone: systemd-logind's RemoveIPC empties /dev/shm of a user who logs out, and
a worker that could not create its first sample file would never start.
Real `ksnode up`, real supervisord."""

from __future__ import annotations

import os
import shutil
import signal
from pathlib import Path

import pytest
import requests

from services.api.ops.metrics import SHARED_MEMORY, shared_memory_folder
from shared.node.reload import children
from tests.conftest import create_database
from tests.support.node_process import NodeProcess, database_env
from tests.support.ops import OPS_HEADERS
from tests.support.processes import wait_until


@pytest.fixture(scope="module")
def node(pg_server, tmp_path_factory):
    db_env = database_env(pg_server, create_database(pg_server))
    node = NodeProcess.build(tmp_path_factory.mktemp("shm") / "var", db_env, API_WORKERS="2")
    node.start()
    yield node
    assert node.stop() == 0


def program_uid(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Uid:"):
            return int(line.split()[1])
    raise AssertionError(f"no Uid line for pid {pid}")


def our_folder(node: NodeProcess) -> Path:
    """The folder the api chose: named after the node's run folder and the
    uid the api runs as (started as root, that is the ``ksnode`` user)."""
    master = wait_until(lambda: node.pids().get("api"), 20)
    folder = shared_memory_folder(node.home / "run", program_uid(master))
    assert folder is not None
    return folder


@pytest.mark.skipif(not SHARED_MEMORY.is_dir(), reason="no /dev/shm on this system")
def test_a_removed_samples_folder_does_not_stop_new_workers(node):
    folder = our_folder(node)
    assert folder.parent == SHARED_MEMORY and folder.is_dir()
    assert oct(folder.stat().st_mode & 0o777) == "0o700"
    master = wait_until(lambda: node.pids().get("api"), 20)
    before = wait_until(lambda: (c := set(children(master))) and len(c) == 2 and c, 20)
    shutil.rmtree(folder)
    for pid in before:
        os.kill(pid, signal.SIGKILL)
    replaced = wait_until(
        lambda: (c := set(children(master))) and len(c) == 2 and not c & before and c, 20
    )
    assert replaced, "the workers were not replaced"
    assert wait_until(
        lambda: requests.get(node.url + "/metrics", timeout=5, headers=OPS_HEADERS).ok, 20
    )
    assert folder.is_dir()
    # The replacements stay up (a worker that cannot start is restarted in a loop).
    assert wait_until(lambda: set(children(master)) == replaced, 3)
    r = requests.get(node.url + "/metrics", timeout=5, headers=OPS_HEADERS)
    assert "ksnode_http_requests_total" in r.text


def test_the_folder_goes_when_the_node_stops(pg_server, tmp_path):
    db_env = database_env(pg_server, create_database(pg_server))
    other = NodeProcess.build(tmp_path / "var", db_env, API_WORKERS="2").start()
    try:
        folder = our_folder(other)
        assert folder.is_dir() and list(folder.glob("*.db"))  # the workers' samples
    finally:
        assert other.stop() == 0  # a failed check must not leave a node running
    assert not folder.exists()
