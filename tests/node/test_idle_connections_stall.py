"""Idle and slowloris connections cost other clients nothing: the real api
program with two workers keeps answering a well-behaved client promptly
while hundreds of connections sit open doing nothing."""

from __future__ import annotations

import select
import socket
import time

import pytest

from services.api.server.balance import ConnectionTable
from tests.support.hostile_clients import (
    connect,
    p99,
    start_api_workers,
    stop_api_program,
    timed_gets,
)

ATTACKERS = [f"127.0.0.{n}" for n in range(11, 21)]  # ten addresses, under the per-address cap
CLIENT = "127.0.0.2"


@pytest.fixture(scope="module")
def program(env_for, config, tmp_path_factory):
    process, port = start_api_workers(env_for, config, tmp_path_factory.mktemp("stall"))
    yield port
    assert stop_api_program(process) == 0


def test_wake_up_reaches_every_other_worker_and_a_full_pipe_is_no_error():
    table = ConnectionTable(3)
    for _ in range(100_000):  # more than a pipe holds
        table.wake_others(0)
    fds = [table.wake_fd(slot) for slot in range(3)]
    readable, _, _ = select.select(fds, [], [], 0)
    assert sorted(readable) == sorted(fds[1:])


def test_a_cleared_slot_wakes_the_other_workers():
    table = ConnectionTable(3)
    fds = [table.wake_fd(slot) for slot in range(3)]
    table.clear(1)  # a worker died or stopped accepting
    readable, _, _ = select.select(fds, [], [], 0)
    assert sorted(readable) == sorted([fds[0], fds[2]])


def _open_attack(port: int, idle: int, slowloris: int) -> list[socket.socket]:
    sockets = []
    for index in range(idle + slowloris):
        sock = connect(port, ATTACKERS[index % len(ATTACKERS)])
        if index >= idle:  # a request that never finishes its headers
            sock.sendall(b"GET /status HTTP/1.1\r\nHost: node\r\nX-Slow: 1\r\n")
        sockets.append(sock)
    return sockets


def test_300_idle_and_50_slowloris_connections_do_not_delay_other_clients(program):
    port = program
    baseline, failed = timed_gets(port, "/status", 20, CLIENT)
    assert failed == 0
    started = time.monotonic()
    attack = _open_attack(port, 300, 50)
    try:
        latencies, failed = timed_gets(port, "/status", 100, CLIENT, timeout=5, budget=30)
        elapsed = time.monotonic() - started
    finally:
        for sock in attack:
            sock.close()
    print(
        f"/status under attack: p99 {p99(latencies) * 1000:.1f} ms "
        f"(baseline {p99(baseline) * 1000:.1f} ms), {failed} failed, {elapsed:.1f} s"
    )
    assert failed == 0, f"{failed} of 100 requests failed or timed out"
    assert p99(latencies) < 1.0, f"p99 {p99(latencies):.2f} s"


def test_a_stream_of_new_idle_connections_does_not_delay_other_clients(program):
    """Ten new idle connections per 0.1 s while the client asks."""
    port = program
    attack: list[socket.socket] = []
    latencies: list[float] = []
    try:
        for _ in range(30):
            for _ in range(10):
                attack.append(connect(port, ATTACKERS[len(attack) % len(ATTACKERS)]))
            answered, failed = timed_gets(port, "/status", 2, CLIENT, timeout=5, budget=10)
            assert failed == 0, f"request failed with {len(attack)} idle connections open"
            latencies += answered
    finally:
        for sock in attack:
            sock.close()
    assert p99(latencies) < 1.0, f"p99 {p99(latencies):.2f} s"
