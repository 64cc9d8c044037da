"""Restarting and upgrading the API under a steady load of 8 clients fails
no request: `ksnode ctl restart api` and `ksnode reload` on a real node
(`ksnode up`, real supervisord)."""

from __future__ import annotations

import os
import signal
import time

import pytest

from shared.node.reload import children
from tests.conftest import create_database
from tests.support.node_process import NodeProcess, alive, database_env
from tests.support.processes import wait_until
from tests.support.steady_load import SteadyLoad

CLIENTS = 8


@pytest.fixture(scope="module")
def node(pg_server, tmp_path_factory):
    db_env = database_env(pg_server, create_database(pg_server))
    node = NodeProcess.build(tmp_path_factory.mktemp("zd") / "var", db_env).start()
    yield node
    assert node.stop() == 0


def under_load(node: NodeProcess, action) -> tuple:
    """Run ``action`` while CLIENTS clients load the node; the load starts a
    second before and goes on a second and a half after."""
    with SteadyLoad(node.url, clients=CLIENTS, timeout=30) as load:
        time.sleep(1.0)
        outcome = action()
        time.sleep(1.5)
        result = load.stop()
    return outcome, result


def test_restart_api_under_load_fails_no_request(node):
    before = wait_until(lambda: node.pids().get("api"), 20)
    outcome, result = under_load(node, lambda: node.ksnode("ctl", "restart", "api"))
    print(
        f"restart api: {result.ok} ok, {result.failed} failed, "
        f"longest {result.longest_seconds * 1000:.0f} ms"
    )
    assert "api: started" in outcome.stdout, outcome.stdout + outcome.stderr
    assert node.pids()["api"] != before
    assert result.failed == 0, result.reasons
    assert result.ok > 100
    assert result.longest_seconds < 10


def test_reload_under_load_replaces_every_program_and_fails_no_request(node):
    before = node.pids()
    assert set(before) == {"api", "backup_worker", "reporter"}
    workers_before = set(children(before["api"]))
    assert workers_before
    outcome, result = under_load(node, lambda: node.ksnode("reload"))
    print(
        f"reload: {result.ok} ok, {result.failed} failed, "
        f"longest {result.longest_seconds * 1000:.0f} ms"
    )
    assert outcome.returncode == 0, outcome.stdout + outcome.stderr
    assert "api: reloaded in place" in outcome.stdout
    assert "api answers" in outcome.stdout
    after = node.pids()
    assert after["backup_worker"] != before["backup_worker"]
    assert after["reporter"] != before["reporter"]
    # The api's pool parent re-executed itself (same pid, new image) and
    # replaced every worker.
    assert after["api"] == before["api"]
    workers_after = set(children(after["api"]))
    assert workers_after and not workers_after & workers_before
    assert "api.handover_done" in node.log_text()
    assert result.failed == 0, result.reasons
    assert result.ok > 100


def test_in_flight_requests_were_never_cut(node):
    # waitress logs a request it could not answer (e.g. the old EBADF of a
    # closed trigger) as "Exception when servicing".
    text = node.log_text()
    assert "Bad file descriptor" not in text
    assert "Exception when servicing" not in text


def test_reload_of_a_node_that_is_not_running_says_so(tmp_path, node):
    other = NodeProcess.build(
        tmp_path / "var", {k: v for k, v in node.env.items() if k[:3] == "DB_"}
    )
    result = other.ksnode("reload", timeout=30)
    assert result.returncode == 1
    assert "not running" in result.stderr


def test_workers_of_a_killed_api_program_stop_instead_of_serving_on(node):
    master = wait_until(lambda: node.pids().get("api"), 20)
    workers = wait_until(lambda: children(master), 10)
    assert workers
    os.kill(master, signal.SIGKILL)
    # The kept socket would let orphans serve old code forever; they drain and exit.
    assert wait_until(lambda: not any(alive(pid) for pid in workers), 20)
    restarted = wait_until(lambda: node.pids().get("api") not in (None, master), 30)
    assert restarted
    assert wait_until(node.status, 30)
