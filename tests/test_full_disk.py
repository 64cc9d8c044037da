"""The node's disk fills up (logs, dumps, the embedded database): the API
keeps answering every request, no worker dies, and /health says why.

The node home is a small real tmpfs, filled to the last byte while the node
runs; one API worker is then killed so that its replacement starts on the
full disk. Real supervisord, real HTTP."""

from __future__ import annotations

import os
import signal
import time

import pytest
import requests

from shared.reload import children
from tests.conftest import create_database
from tests.filesystems import FILLER, fill, small_tmpfs
from tests.node_process import NodeProcess, database_env
from tests.processes import wait_until

PATHS = ("/status", "/health", "/metrics", "/no/such/route", "/openapi.json")


@pytest.fixture(scope="module")
def full_node(pg_server, tmp_path_factory):
    mount = tmp_path_factory.mktemp("full-disk") / "home"
    with small_tmpfs(mount, "16m") as mounted:
        if not mounted:
            pytest.skip("needs to mount a tmpfs (root)")
        db_env = database_env(pg_server, create_database(pg_server))
        node = NodeProcess.build(mount / "var", db_env, API_WORKERS="2").start()
        try:
            fill(mount)
            yield node, mount
        finally:
            (mount / FILLER).unlink(missing_ok=True)
            assert node.stop() == 0


def test_a_worker_started_on_a_full_disk_serves(full_node):
    node, _mount = full_node
    master = wait_until(lambda: node.pids().get("api"), 20)
    workers = wait_until(lambda: (c := children(master)) and len(c) == 2 and c, 20)
    os.kill(workers[0], signal.SIGKILL)
    replaced = wait_until(
        lambda: (c := set(children(master))) and len(c) == 2 and workers[0] not in c and c, 20
    )
    assert replaced, "the killed worker was not replaced"
    answers: dict[str, int] = {}
    failures = []
    deadline = time.monotonic() + 60
    for i in range(300):
        path = PATHS[i % len(PATHS)]
        try:
            with requests.Session() as session:  # new connections reach both workers
                r = session.get(node.url + path, timeout=10)
            answers[f"{path} {r.status_code}"] = answers.get(f"{path} {r.status_code}", 0) + 1
            if r.status_code >= 500 and path != "/health":
                failures.append(f"{path}: {r.status_code} {r.text[:200]}")
        except requests.RequestException as exc:
            failures.append(f"{path}: {type(exc).__name__}")
        if time.monotonic() > deadline:
            break
    print(f"on a full disk: {answers}")
    assert not failures, failures[:10]
    # No worker died (a store into a sample file's new page on a full disk
    # is a SIGBUS): the same two are serving.
    assert set(children(master)) == replaced
    assert node.pids()["api"] == master


def test_health_names_the_full_folders(full_node):
    node, mount = full_node
    body = requests.get(node.url + "/health", timeout=10).json()
    low = {x["folder"]: x for x in body["reasons"] if x["reason"] == "disk_low_space"}
    assert set(low) == {"LOG_DIR", "KSNODE_HOME"}, body["reasons"]
    assert str(mount) in low["LOG_DIR"]["detail"]
    assert body["status"] == "degraded"
    assert body["disk"]["KSNODE_HOME"]["free_bytes"] == 0
    metrics = requests.get(node.url + "/metrics", timeout=10).text
    assert 'ksnode_health_reason{reason="disk_low_space"} 1.0' in metrics
    assert 'ksnode_disk_free_bytes{folder="LOG_DIR"} 0.0' in metrics
