"""What bench/load.py reports beside throughput: the whole node's memory
(PSS, from /proc) and how long ``ksnode up`` takes to a first 200 on /status.

PSS (proportional set size) counts a page shared by N processes as 1/N in
each, so the sum over processes is the node's real share of memory; RSS
would count the forked API workers' shared pages once per worker.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import requests

OPS_TOKEN = "bench-ops-token-0123456789abcdef"
OPS_HEADERS = {"Authorization": f"Bearer {OPS_TOKEN}"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _children(pid: int) -> list[int]:
    found = []
    try:
        for task in Path(f"/proc/{pid}/task").iterdir():
            found += [int(p) for p in (task / "children").read_text().split()]
    except OSError:
        pass
    return found


def descendants(pid: int) -> list[int]:
    """``pid`` and every process under it."""
    out, todo = [], [pid]
    while todo:
        current = todo.pop()
        out.append(current)
        todo += _children(current)
    return out


def pss_kib(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def _name(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()[:200]
    except OSError:
        return ""


def _role(cmdline: str) -> str:
    if "postgres" in cmdline.split(" ")[0] or cmdline.startswith("postgres:"):
        return "postgres"
    if "shared.node.keeper" in cmdline:  # `ksnode up` once prepared (shared/node/keeper.py)
        return "ksnode up"
    for role in ("supervisord", "services.api", "backup_worker", "reporter"):
        if role in cmdline:
            return {"services.api": "api"}.get(role, role)
    if " up" in cmdline:
        return "ksnode up"
    return "other"


def node_pids(up_pid: int, home: Path | None = None) -> dict[int, str]:
    """pid -> role of ``ksnode up`` and everything under it, and of the
    embedded Postgres in ``home`` (pg_ctl detaches it from us)."""
    pids = descendants(up_pid)
    try:
        postmaster = int((home / "pg_data" / "postmaster.pid").read_text().split()[0])  # type: ignore[operator]
        pids += [p for p in descendants(postmaster) if p not in pids]
    except (OSError, ValueError, IndexError, TypeError):
        pass
    return {pid: _role(_name(pid)) for pid in pids}


def node_memory(up_pid: int, home: Path | None = None) -> dict[str, tuple[int, int]]:
    """role -> (processes, PSS KiB) of the node's processes (node_pids)."""
    roles: dict[str, tuple[int, int]] = {}
    for pid, role in node_pids(up_pid, home).items():
        count, kib = roles.get(role, (0, 0))
        roles[role] = (count + 1, kib + pss_kib(pid))
    return roles


def format_memory(roles: dict[str, tuple[int, int]]) -> str:
    node = sum(kib for role, (_, kib) in roles.items() if role != "postgres")
    parts = ", ".join(
        f"{role} {kib / 1024:.1f} ({count})"
        for role, (count, kib) in sorted(roles.items())
        if role != "postgres"
    )
    pg_count, pg_kib = roles.get("postgres", (0, 0))
    return (
        f"node PSS {node / 1024:.1f} MiB [{parts}]; "
        f"embedded Postgres apart: {pg_kib / 1024:.1f} MiB ({pg_count} processes)"
    )


@dataclass
class Node:
    process: subprocess.Popen
    url: str
    home: Path
    env: dict[str, str]

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            self.process.wait(60)


def node_env(home: Path, bot_token: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DB_")}
    env.update(
        {
            "KSNODE_HOME": str(home),
            "PORT": str(free_port()),
            "HOST": "127.0.0.1",
            "RATE_LIMIT_PER_MINUTE": "0",
            "TELEGRAM_BOT_TOKEN": bot_token,
            "OPS_TOKEN": OPS_TOKEN,
            "LOG_LEVEL": "warning",
            "BACKUP_INTERVAL_SECONDS": "86400",
        }
    )
    return env


def start(env: dict[str, str], timeout: float = 90) -> tuple[Node, float]:
    """Start ``ksnode up``; returns the node and the seconds to its first 200
    on /status (polled every 20 ms)."""
    ksnode = shutil.which("ksnode") or str(Path(sys.executable).parent / "ksnode")
    url = f"http://127.0.0.1:{env['PORT']}"
    started = time.monotonic()
    process = subprocess.Popen(
        [ksnode, "up"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    node = Node(process, url, Path(env["KSNODE_HOME"]), env)
    while time.monotonic() - started < timeout:
        try:
            if requests.get(url + "/status", timeout=1).status_code == 200:
                return node, time.monotonic() - started
        except requests.RequestException:
            pass
        if process.poll() is not None:
            raise SystemExit(f"ksnode up exited with {process.returncode}")
        time.sleep(0.02)
    node.stop()
    raise SystemExit(f"the node did not answer /status within {timeout:.0f} s")


def wait_settled(node: Node, timeout: float = 90) -> None:
    """A fresh node runs its backup self-check and first backup at once:
    measure after they are done, not alongside them."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            status = requests.get(node.url + "/status", timeout=1).json()
            if status["is_db_backup_checked"] and status["latest_backup_time"]:
                time.sleep(2)
                return
        except (requests.RequestException, ValueError, KeyError):
            pass
        time.sleep(0.2)
    raise SystemExit("the node's first backup did not finish")


def start_measured(bot_token: str) -> tuple[Node, float, float]:
    """A node in a new temporary home, started twice: (node, fresh s, warm s).
    Fresh: an empty home (Postgres initdb, migrations, keys); warm: the same
    home again after a clean stop. The returned node is the warm one."""
    home = Path(tempfile.mkdtemp(prefix="ksnode-bench-")) / "var"
    env = node_env(home, bot_token)
    node, fresh = start(env)
    try:
        wait_settled(node)
    finally:
        node.stop()
    node, warm = start(env)
    wait_settled(node)
    return node, fresh, warm


def remove(node: Node) -> None:
    node.stop()
    shutil.rmtree(node.home.parent, ignore_errors=True)
