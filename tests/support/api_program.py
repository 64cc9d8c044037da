"""The api program alone (`python -m services.api`: waitress' master and its
worker processes), for tests of the production server rather than Flask's
test app."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import requests

from tests.support.processes import wait_until

ROOT = Path(__file__).resolve().parents[2]


def start_api_program(
    env: dict[str, str],
    ready: Callable[[subprocess.Popen], bool] | None = None,
    timeout: float = 30,
) -> subprocess.Popen:
    """Start the api program with exactly ``env`` (HOST and PORT included)
    and wait until /status answers 200 and ``ready(program)``, if given, is
    true; the program is killed and the test fails if that takes longer
    than ``timeout`` seconds."""
    program = subprocess.Popen(
        [sys.executable, "-m", "services.api"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        cwd=ROOT,
    )
    url = f"http://{env['HOST']}:{env['PORT']}/status"

    def answering() -> bool:
        try:
            up = requests.get(url, timeout=1).status_code == 200
        except requests.RequestException:
            return False
        return up and (ready is None or ready(program))

    if not wait_until(answering, timeout):
        program.kill()
        program.wait(10)
        raise AssertionError(f"the api program did not start within {timeout} s")
    return program
