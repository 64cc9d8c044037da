"""The embedded Postgres of `ksnode up` dies (OOM killer, a stray kill -9):
the node starts it again on the same port, the programs reconnect without a
restart, no share is lost, and the log says what happened. Real `ksnode up`,
real supervisord, real Postgres."""

from __future__ import annotations

import os
import signal
import time

import pytest
import requests

from tests.support.fakes.telegram import BOT_TOKEN
from tests.support.keyshare_helpers import secp_key, share_hex, v1_get, v1_register
from tests.support.node_process import NodeProcess
from tests.support.processes import wait_until


@pytest.fixture(scope="module")
def node(tmp_path_factory):
    home = tmp_path_factory.mktemp("pg-watch") / "var"
    node = NodeProcess.build(home, {}, TELEGRAM_BOT_TOKEN=BOT_TOKEN).start(120)
    yield node
    assert node.stop() == 0


def postmaster(node: NodeProcess) -> tuple[int, int]:
    """(pid, port) of the embedded server, from its postmaster.pid."""
    lines = (node.home / "pg_data" / "postmaster.pid").read_text().splitlines()
    return int(lines[0]), int(lines[3])


def test_a_killed_embedded_postgres_is_started_again_and_the_node_recovers(node):
    user, key, share = "5151", secp_key(), share_hex()
    r = v1_register(node.url, user, key, share)
    assert r.status_code == 200, r.text
    programs = wait_until(lambda: (p := node.pids()) and len(p) == 3 and p, 30)
    pid, port = postmaster(node)
    os.kill(pid, signal.SIGKILL)
    killed = time.monotonic()
    # While it is away: a prompt JSON 503, not a hang.
    down = requests.get(node.url + "/health", timeout=10)
    assert down.status_code == 503 and down.json()["status"] == "down", down.text

    def healthy() -> bool:
        r = requests.get(node.url + "/health", timeout=10)
        return r.status_code == 200 and "database_unavailable" not in r.text

    assert wait_until(healthy, 90, interval=0.5), "the node did not recover"
    print(f"embedded Postgres killed: node healthy again after {time.monotonic() - killed:.1f} s")
    new_pid, new_port = postmaster(node)
    assert new_pid != pid and new_port == port
    read = v1_get(node.url, user, key)
    assert read.status_code == 200 and read.json()["data"]["share"] == share, read.text
    # The programs reconnected by themselves: none was restarted.
    assert node.pids() == programs
    log = node.up_output()
    assert "embedded_pg.died" in log and "embedded_pg.restarted" in log
