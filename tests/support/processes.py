"""Polling and stopping for tests that run real programs: wait for a
condition with a deadline, and stop a child process (SIGTERM, then SIGKILL)."""

from __future__ import annotations

import signal
import subprocess
import time


def wait_until(predicate, timeout: float, interval: float = 0.1):
    """The first truthy value of ``predicate()`` within ``timeout`` seconds;
    else its value at one last look after the deadline."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    return predicate()


def terminate(process: subprocess.Popen, grace: float = 30) -> int:
    """SIGTERM ``process``, wait ``grace`` seconds for it, then SIGKILL it;
    its exit status (at once if it has already ended)."""
    if process.poll() is not None:
        return process.returncode
    process.send_signal(signal.SIGTERM)
    try:
        return process.wait(grace)
    except subprocess.TimeoutExpired:
        process.kill()
        return process.wait(10)
