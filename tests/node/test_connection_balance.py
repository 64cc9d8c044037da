"""Keep-alive connections spread evenly over the API worker processes
(services/api/server/balance.py): the shared table's rules, then the real api
program with two workers."""

from __future__ import annotations

import os
import signal
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests

from services.api.server.balance import ABSENT, STALE_SECONDS, ConnectionTable
from shared.node.reload import children
from tests.support.fakes.idp import ManualClock, idp_fixture  # noqa: F401 - the module's `idp` fixture
from tests.support.hostile_clients import start_api_workers


def test_least_loaded_worker_listens_and_ties_all_listen():
    clock = ManualClock()
    table = ConnectionTable(3, clock=clock)
    assert table.may_accept(0, 0)  # alone: always
    table.publish(1, 2)
    table.publish(2, 1)
    assert table.may_accept(0, 1)  # tie with slot 2
    assert not table.may_accept(0, 2)  # slot 2 holds fewer
    assert table.may_accept(2, 1)
    assert not table.may_accept(1, 2)


def test_dead_and_stale_workers_are_ignored():
    clock = ManualClock()
    table = ConnectionTable(2, clock=clock)
    table.publish(1, 0)
    assert not table.may_accept(0, 5)
    table.clear(1)  # the parent saw it exit
    assert table.counts()[1] == ABSENT
    assert table.may_accept(0, 5)
    table.publish(1, 0)
    clock.advance(STALE_SECONDS + 0.1)  # hung: no event-loop pass for too long
    assert table.may_accept(0, 5)
    assert table.counts() == [5, ABSENT]


def test_table_is_shared_with_forked_children():
    table = ConnectionTable(2)
    pid = os.fork()
    if pid == 0:
        table.publish(1, 7)
        os._exit(0)
    os.waitpid(pid, 0)
    assert table.counts()[1] == 7


def _connections_per_worker(worker_pids: list[int], port: int) -> dict[int, int]:
    """ESTABLISHED sockets on ``port`` held by each pid (from /proc)."""
    inodes: dict[str, int] = {}
    for pid in worker_pids:
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            try:
                target = os.readlink(fd)
            except OSError:
                continue
            if target.startswith("socket:["):
                inodes[target[8:-1]] = pid
    counts = dict.fromkeys(worker_pids, 0)
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local_port = int(fields[1].split(":")[1], 16)
        if local_port == port and fields[3] == "01" and fields[9] in inodes:  # 01: ESTABLISHED
            counts[inodes[fields[9]]] += 1
    return counts


def test_api_program_spreads_connections_and_replaces_a_dead_worker(env_for, config, tmp_path):
    program, port = start_api_workers(env_for, config, tmp_path)
    sessions: list[requests.Session] = []
    url = f"http://127.0.0.1:{port}/status"
    try:
        workers = children(program.pid)
        assert len(workers) == 2
        for _ in range(8):  # eight keep-alive clients, like a proxy's pool
            session = requests.Session()
            assert session.get(url, timeout=5).status_code == 200
            sessions.append(session)
        # However they were accepted (the second worker may have started
        # late), a few requests on each connection even them out: an
        # overloaded worker answers "Connection: close" and the client
        # reconnects to the other.
        closes, per_worker = [], {}
        for _ in range(30):  # a worker sheds at most one connection per 0.5 s
            answers = [session.get(url, timeout=5) for session in sessions]
            assert all(answer.status_code == 200 for answer in answers)
            closes.append(sum(answer.headers.get("Connection") == "close" for answer in answers))
            per_worker = _connections_per_worker(workers, port)
            if closes[-1] == 0 and sorted(per_worker.values()) == [4, 4]:
                break
            time.sleep(0.3)
        assert sorted(per_worker.values()) == [4, 4], (per_worker, closes)
        assert sum(closes) <= 4, closes  # each close moved a connection: no churn
        # Kill one worker: its clients lose their connections, the parent
        # starts a new one, and new clients are served again.
        os.kill(workers[0], signal.SIGKILL)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and (
            workers[0] in children(program.pid) or len(children(program.pid)) < 2
        ):
            time.sleep(0.1)
        replaced = children(program.pid)
        assert len(replaced) == 2 and workers[0] not in replaced
        for _ in range(6):
            assert requests.get(url, timeout=5).status_code == 200
    finally:
        for session in sessions:
            session.close()
        program.send_signal(signal.SIGTERM)
        assert program.wait(30) == 0


def test_a_worker_holding_two_more_than_another_sheds():
    clock = ManualClock()
    table = ConnectionTable(3, clock=clock)
    table.publish(1, 3)
    table.publish(2, 4)
    assert not table.holds_too_many(0, 4)
    assert table.holds_too_many(0, 5)
    table.clear(1)  # a dead worker's low count does not count
    assert not table.holds_too_many(0, 5)
    assert not ConnectionTable(1).holds_too_many(0, 100)


def test_sigterm_lets_requests_in_progress_finish(env_for, config, tmp_path, idp):
    idp.answer("drain-x-token", 200, {"data": {"id": "31337", "username": "drain"}}, delay=1.5)
    program, port = start_api_workers(
        env_for,
        config,
        tmp_path,
        X_USERINFO_URL=f"{idp.url}/x/2/users/me",
        AUTH_HTTP_TIMEOUT_SECONDS="5",
    )
    try:
        with ThreadPoolExecutor(1) as pool:
            slow = pool.submit(
                requests.post,
                f"http://127.0.0.1:{port}/keyshare/v1/",
                headers={"Authorization": "Bearer drain-x-token"},
                json={"auth_type": "x", "public_key": "02" + "11" * 32},
                timeout=10,
            )
            time.sleep(0.5)  # waiting on the provider now
            program.send_signal(signal.SIGTERM)
            answer = slow.result(10)
        assert answer.status_code == 404 and answer.json()["code"] == "USER_NOT_FOUND", answer.text
        assert program.wait(10) == 0
        with pytest.raises(requests.ConnectionError):
            requests.get(f"http://127.0.0.1:{port}/status", timeout=2)
    finally:
        if program.poll() is None:
            program.kill()
