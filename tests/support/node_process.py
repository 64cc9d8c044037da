"""A whole node started with `ksnode up` (real supervisord, three programs)
on the test session's Postgres, for end-to-end tests."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import requests

from shared.db.embedded import free_port
from tests.support.ops import OPS_TOKEN
from tests.support.processes import terminate, wait_until

ROOT = Path(__file__).resolve().parents[2]
KSNODE = [sys.executable, "-c", "from shared.cli import main; main()"]


def database_env(pg_server, dbname: str) -> dict[str, str]:
    """DB_* settings for a node on the test Postgres (no embedded server)."""
    return {
        "DB_HOST": pg_server.host,
        "DB_PORT": str(pg_server.port),
        "DB_USER": "postgres",
        "DB_PASSWORD": pg_server.password,
        "DB_NAME": dbname,
    }


def run_ksnode(
    env: dict[str, str], *args: str, timeout: float = 120, root: Path = ROOT
) -> subprocess.CompletedProcess:
    """`ksnode ARGS` from the code in ``root`` (the repository) with exactly
    ``env`` as its environment; its output captured as text."""
    return subprocess.run(
        [*KSNODE, *args], env=env, cwd=root, capture_output=True, text=True, timeout=timeout
    )


def alive(pid: int) -> bool:
    """True while ``pid`` runs (a zombie counts as gone)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    except OSError:
        return False
    return state != "Z"


PROGRAMS = ("api", "backup_worker", "reporter")
# Every `ksnode up` a test launched: tests/conftest.py stops any still running
# when the session ends, so a test that failed before its own stop leaves no
# node (and its Postgres) behind.
LAUNCHED: list[subprocess.Popen] = []


def stop_leftover_nodes() -> int:
    """SIGTERM (then SIGKILL) each launched `ksnode up` still running; how many."""
    left = [process for process in LAUNCHED if process.poll() is None]
    for process in left:
        terminate(process, 30)
    LAUNCHED.clear()
    return len(left)


class NodeProcess:
    def __init__(self, home: Path, env: dict[str, str], root: Path = ROOT):
        self.home = home
        self.env = env
        self.root = root  # the code the node runs (`python -c` imports from its cwd)
        self.global_args: list[str] = []  # before the command, e.g. ["--env-file", path]
        self.port = int(env["PORT"])
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen | None = None

    @classmethod
    def build(
        cls, home: Path, db_env: dict[str, str], secret: Path | None = None, **overrides: str
    ) -> NodeProcess:
        """A node in ``home`` on the database ``db_env`` (DB_* settings); nodes
        that share a database must share ``secret`` (written once if absent)."""
        if secret is None:
            secret = home.parent / "encryption_secret.txt"
        if not secret.exists():
            secret.parent.mkdir(parents=True, exist_ok=True)
            secret.write_text("node-process-test-secret")
            secret.chmod(0o600)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("DB_", "PORT"))}
        env.update(db_env)
        env.update(
            {
                "KSNODE_HOME": str(home),
                "ENCRYPTION_SECRET_PATH": str(secret),
                "PORT": str(free_port()),
                "HOST": "127.0.0.1",
                "RATE_LIMIT_PER_MINUTE": "0",
                "STATUS_CACHE_SECONDS": "0",
                "HEARTBEAT_INTERVAL_SECONDS": "1",
                "BACKUP_SELFCHECK": "false",
                "ADMIN_PASSWORD": "test-admin-password",
                "OPS_TOKEN": OPS_TOKEN,
            }
        )
        env.update(overrides)
        return cls(home, env)

    def start(self, timeout: float = 60) -> NodeProcess:
        return self.launch().wait_ready(timeout)

    def launch(self) -> NodeProcess:
        """Run `ksnode up` without waiting for it."""
        self.home.mkdir(parents=True, exist_ok=True)
        log = (self.home.parent / f"{self.home.name}-up.out").open("ab")
        self.process = subprocess.Popen(
            [*KSNODE, *self.global_args, "up"],
            env=self.env,
            cwd=self.root,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        LAUNCHED.append(self.process)
        return self

    def up_output(self) -> str:
        return (self.home.parent / f"{self.home.name}-up.out").read_text(errors="replace")

    def wait_ready(self, timeout: float = 60) -> NodeProcess:
        if not wait_until(self.status, timeout, interval=0.2):
            raise AssertionError(f"node at {self.url} did not answer /status in {timeout} s")
        return self

    def status(self) -> dict | None:
        try:
            return requests.get(self.url + "/status", timeout=2).json()
        except (requests.RequestException, ValueError):
            return None

    def ksnode(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
        return run_ksnode(self.env, *self.global_args, *args, timeout=timeout, root=self.root)

    def pids(self) -> dict[str, int]:
        text = self.ksnode("ctl", "status", timeout=30).stdout
        return {
            m.group(1): int(m.group(2))
            for m in re.finditer(r"^(\w+)\s+RUNNING\s+pid (\d+)", text, re.M)
        }

    def running_pids(self, timeout: float = 30) -> dict[str, int]:
        """The programs' pids once supervisord calls all three RUNNING: the
        api answers /status before its startsecs have passed, so a plain
        ``pids()`` right after ``start()`` may miss a program still STARTING."""
        deadline = time.monotonic() + timeout
        while True:
            pids = self.pids()
            if set(pids) == set(PROGRAMS) or time.monotonic() > deadline:
                return pids
            time.sleep(0.2)

    def log_text(self) -> str:
        folder = self.home / "logs"
        return "".join(path.read_text(errors="replace") for path in folder.rglob("*.log"))

    def stop(self) -> int | None:
        return None if self.process is None else terminate(self.process, 90)
