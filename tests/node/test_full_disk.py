"""The node's disk fills up (logs, run files, the embedded database): the
API keeps answering every request, no worker dies, writes the database
cannot take are refused promptly with 503, and /health says why.

The node home is a small real tmpfs, filled to the last byte while the node
runs; one API worker is then killed so that its replacement starts on the
full disk. Real supervisord, real HTTP."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import time
from pathlib import Path

import pytest
import requests

from shared.node.reload import children
from tests.conftest import create_database
from tests.support.fakes.telegram import BOT_TOKEN
from tests.support.filesystems import FILLER, fill, small_tmpfs
from tests.support.keyshare_helpers import secp_key, share_hex, v1_get, v1_register
from tests.support.node_process import NodeProcess, database_env
from tests.support.ops import OPS_HEADERS
from tests.support.processes import wait_until

NEARLY_FULL = 64 * 1024  # bytes free: a few pages of the 16 MiB tmpfs
PATHS = ("/status", "/health", "/metrics", "/no/such/route", "/openapi.json")


@contextlib.contextmanager
def node_on_tmpfs(mount: Path, size: str, build, *, fill_now: bool):
    """A node ``build(mount)`` started with its home on a tmpfs of ``size``
    (filled at once if ``fill_now``); stopped, with room again, after."""
    with small_tmpfs(mount, size) as mounted:
        if not mounted:
            pytest.skip("needs to mount a tmpfs (root)")
        node = build(mount).start(120)
        try:
            if fill_now:
                fill(mount)
            yield node, mount
        finally:
            (mount / FILLER).unlink(missing_ok=True)
            assert node.stop() == 0


@pytest.fixture(scope="module")
def full_node(pg_server, tmp_path_factory):
    db_env = database_env(pg_server, create_database(pg_server))
    with node_on_tmpfs(
        tmp_path_factory.mktemp("full-disk") / "home",
        "16m",
        lambda mount: NodeProcess.build(mount / "var", db_env, API_WORKERS="2"),
        fill_now=True,
    ) as started:
        yield started


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
                r = session.get(node.url + path, timeout=10, headers=OPS_HEADERS)
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
    # The node frees a few pages now and then (the files of a worker that
    # died, a rotated log) and takes them back with its next log lines: fill
    # again, and allow what it may have freed since (a few pages, not 0).
    fill(mount)
    body = requests.get(node.url + "/health", timeout=10, headers=OPS_HEADERS).json()
    low = {x["folder"]: x for x in body["reasons"] if x["reason"] == "disk_low_space"}
    assert set(low) == {"LOG_DIR", "KSNODE_HOME"}, body["reasons"]
    assert str(mount) in low["LOG_DIR"]["detail"]
    assert body["status"] == "degraded"
    assert body["disk"]["KSNODE_HOME"]["free_bytes"] < NEARLY_FULL, body["disk"]
    metrics = requests.get(node.url + "/metrics", timeout=10, headers=OPS_HEADERS).text
    assert 'ksnode_health_reason{reason="disk_low_space"} 1.0' in metrics
    free = re.search(r'^ksnode_disk_free_bytes\{folder="LOG_DIR"\} (\S+)$', metrics, re.M)
    assert free is not None and float(free.group(1)) < NEARLY_FULL, free


@pytest.fixture(scope="module")
def full_database_node(tmp_path_factory):
    """A node whose embedded Postgres lives on a small tmpfs (the node home)."""
    outside = tmp_path_factory.mktemp("full-db")
    with node_on_tmpfs(
        outside / "home",
        "160m",
        lambda mount: NodeProcess.build(
            mount / "var",
            {},  # no DB_*: `ksnode up` runs the embedded Postgres in the home
            LOG_DIR=str(outside / "logs"),
            DUMP_DIR=str(outside / "dump"),
            TELEGRAM_BOT_TOKEN=BOT_TOKEN,
        ),
        fill_now=False,
    ) as started:
        yield started


def test_a_full_database_disk_refuses_writes_promptly_and_serves_reads(full_database_node):
    node, mount = full_database_node
    user, key, share = "4242", secp_key(), share_hex()
    assert v1_register(node.url, user, key, share).status_code == 200
    master = wait_until(lambda: node.pids().get("api"), 20)
    workers = set(children(master))
    fill(mount)
    # Postgres writes into WAL space it already holds for a while; then it
    # cannot write any more.
    refused, slowest = [], 0.0
    for i in range(3000):
        started = time.monotonic()
        r = v1_register(node.url, f"9{i}", secp_key(), share_hex())
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
    read = v1_get(node.url, user, key)
    assert read.status_code == 200 and read.json()["data"]["share"] == share, read.text
    health = requests.get(node.url + "/health", timeout=15).json()
    assert "disk_low_space" in [x["reason"] for x in health["reasons"]]
    assert set(children(master)) == workers  # no worker died
    (mount / FILLER).unlink()
    # Room again: writes come back without a restart.
    assert wait_until(
        lambda: v1_register(node.url, "777", secp_key(), share_hex()).status_code == 200, 30
    )
