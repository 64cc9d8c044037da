"""The node's disk fills up (logs, run files, the embedded database): the
API keeps answering every request, no worker dies, writes the database
cannot take are refused promptly with 503, and /health says why.

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
from tests.fakes.telegram import BOT_TOKEN, bearer
from tests.filesystems import FILLER, fill, small_tmpfs
from tests.keyshare_helpers import secp_key, share_hex
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


@pytest.fixture(scope="module")
def full_database_node(tmp_path_factory):
    """A node whose embedded Postgres lives on a small tmpfs (the node home)."""
    mount = tmp_path_factory.mktemp("full-db") / "home"
    with small_tmpfs(mount, "160m") as mounted:
        if not mounted:
            pytest.skip("needs to mount a tmpfs (root)")
        outside = mount.parent
        node = NodeProcess.build(
            mount / "var",
            {},  # no DB_*: `ksnode up` runs the embedded Postgres in the home
            LOG_DIR=str(outside / "logs"),
            DUMP_DIR=str(outside / "dump"),
            TELEGRAM_BOT_TOKEN=BOT_TOKEN,
        ).start(120)
        try:
            yield node, mount
        finally:
            (mount / FILLER).unlink(missing_ok=True)
            assert node.stop() == 0


def register(node: NodeProcess, user: str, key: str, share: str) -> requests.Response:
    body = {"auth_type": "telegram", "curve_type": "secp256k1", "public_key": key, "share": share}
    return requests.post(
        node.url + "/keyshare/v1/register", json=body, headers=bearer(user), timeout=15
    )


def test_a_full_database_disk_refuses_writes_promptly_and_serves_reads(full_database_node):
    node, mount = full_database_node
    user, key, share = "4242", secp_key(), share_hex()
    assert register(node, user, key, share).status_code == 200
    master = wait_until(lambda: node.pids().get("api"), 20)
    workers = set(children(master))
    fill(mount)
    # Postgres writes into WAL space it already holds for a while; then it
    # cannot write any more.
    refused, slowest = [], 0.0
    for i in range(3000):
        started = time.monotonic()
        r = register(node, f"9{i}", secp_key(), share_hex())
        slowest = max(slowest, time.monotonic() - started)
        if r.status_code != 200:
            refused.append(r)
            if len(refused) == 5:
                break
    print(
        f"full database disk: {i + 1 - len(refused)} registrations went through first; "
        f"slowest answer {slowest:.2f} s"
    )
    assert len(refused) == 5, "Postgres never ran out of space"
    for r in refused:
        assert r.status_code == 503, r.text
        assert r.json()["code"] == "SERVICE_UNAVAILABLE"
    read = requests.post(
        node.url + "/keyshare/v1/",
        json={"auth_type": "telegram", "public_key": key},
        headers=bearer(user),
        timeout=15,
    )
    assert read.status_code == 200 and read.json()["data"]["share"] == share, read.text
    health = requests.get(node.url + "/health", timeout=15).json()
    assert "disk_low_space" in [x["reason"] for x in health["reasons"]]
    assert set(children(master)) == workers  # no worker died
    (mount / FILLER).unlink()
    # Room again: writes come back without a restart.
    assert wait_until(lambda: register(node, "777", secp_key(), share_hex()).status_code == 200, 30)
