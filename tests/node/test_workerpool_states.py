"""The api pool parent's states (workerpool.PoolState, Retirement), driven
with real forked workers and a real previous-image process."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time

import pytest

from services.api.server.balance import ConnectionTable
from services.api.server.workerpool import PoolState, Retirement, WorkerPool

LOG = logging.getLogger("test.workerpool")


def _serve_forever(table: ConnectionTable):
    def run_worker(slot: int) -> None:  # in the forked child: "serving" until SIGTERM
        while True:
            table.publish(slot, 0)
            time.sleep(0.05)

    return run_worker


@pytest.fixture
def own_signals():
    """start() installs the pool's handlers in this process: put ours back."""
    saved = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)}
    yield
    for sig, handler in saved.items():
        signal.signal(sig, handler)


def _wait_until(predicate, seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_reload_then_stop(own_signals):
    table = ConnectionTable(2)
    pool = WorkerPool(2, _serve_forever(table), table, LOG)
    pool.start()
    try:
        assert pool.state is PoolState.SERVING and pool.retirement is Retirement.NONE
        assert len(pool.slots) == 2
        os.kill(os.getpid(), signal.SIGHUP)  # the real handler start() installed
        _wait_until(lambda: pool.state is PoolState.RELOAD_REQUESTED)
        pool.supervise()  # returns at once: the program hands over now
        assert pool.reload_requested and len(pool.slots) == 2
        pool.reload_taken()
        assert pool.state is PoolState.SERVING
    finally:
        os.kill(os.getpid(), signal.SIGTERM)
        _wait_until(lambda: pool.stopping)
        pool.request_reload()  # a SIGHUP while stopping changes nothing
        assert pool.state is PoolState.STOPPING
        pool.supervise()  # waits for both workers to exit
    assert pool.slots == {}


def test_previous_workers_retire_once_the_new_ones_serve(own_signals):
    previous = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    table = ConnectionTable(1)
    pool = WorkerPool(1, _serve_forever(table), table, LOG)
    try:
        pool.start([previous.pid])
        assert pool.retirement is Retirement.WAITING
        _wait_until(lambda: all(c == 0 for c in table.counts()))
        pool.retire_when_ready()
        assert pool.retirement is Retirement.SIGNALLED
        assert previous.wait(timeout=10) == -signal.SIGTERM
    finally:
        previous.kill()
        pool.stop()
        pool.supervise()
    assert pool.slots == {} and pool.state is PoolState.STOPPING
