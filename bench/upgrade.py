"""The upgrade guide's upgrade, measured under load.

    python bench/upgrade.py [--to COMMIT] [--clients 8] [--keep-building]

Clones this checkout, starts the Docker stack at HEAD as the operator guide
does (docker/docker-compose.yml, `.env` like env.example's; host networking
and local base images as in tests/node/test_docker_compose.py, since no
registry is reachable here), registers a share, then upgrades to the next
commit (``--to``, default: an empty commit on top, so only the image's
git-hash layer is rebuilt) with the upgrade guide's steps:

    git checkout <next>
    docker compose build key_share_node          # the image, while the old one serves
    docker compose up -d --build key_share_node  # the documented command

while ``--clients`` threads each call GET /status and fetch the share in a
loop. Prints failed requests (with reasons), the longest gap between two
answered requests, and the time from the old container's stop (its `kill`
event: SIGTERM) and its exit (`die`) to the new one's first 200, plus the
git_hash /status reports before and after.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from shared.db.embedded import free_port  # noqa: E402
from tests.node.test_docker_compose import (  # noqa: E402
    NODE_IMAGE,
    Stack,
    compose_plugin_config,
    fresh_clone,
    write_operator_files,
)
from tests.support import docker_support as ds  # noqa: E402
from tests.support.fakes.telegram import BOT_TOKEN  # noqa: E402
from tests.support.keyshare_helpers import secp_key, share_hex, v1_get, v1_register  # noqa: E402


class Load:
    """``clients`` threads alternating GET /status and a share read; every
    answer recorded as (monotonic time, wall time, ok, reason)."""

    def __init__(self, url: str, user: str, key: str, clients: int):
        self.url, self.user, self.key = url, user, key
        self.clients = clients
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.answers: list[tuple[float, bool, str]] = []  # wall time, ok, reason

    def _client(self) -> None:
        session = requests.Session()
        while not self.stop.is_set():
            for kind in ("status", "share"):
                try:
                    if kind == "status":
                        code = session.get(self.url + "/status", timeout=10).status_code
                    else:
                        code = v1_get(self.url, self.user, self.key, timeout=10).status_code
                    ok, reason = code == 200, f"{kind} {code}"
                except requests.RequestException as exc:
                    ok, reason = False, f"{kind} {type(exc).__name__}"
                    time.sleep(0.05)  # refused connections return at once
                with self.lock:
                    self.answers.append((time.time(), ok, reason))

    def __enter__(self) -> Load:
        self.threads = [threading.Thread(target=self._client) for _ in range(self.clients)]
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(30)


class Events:
    """`docker events` for containers, read while the upgrade runs."""

    def __init__(self, env: dict[str, str]):
        self.process = subprocess.Popen(
            ["docker", "events", "--format", "{{json .}}", "--filter", "type=container"],
            stdout=subprocess.PIPE,
            text=True,
            env=env,
        )
        self.events: list[dict] = []
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        for line in self.process.stdout:
            with contextlib.suppress(ValueError):
                self.events.append(json.loads(line))

    def first(self, container: str, action: str) -> float | None:
        for event in self.events:
            if event.get("id", "").startswith(container) and event.get("Action") == action:
                return event["timeNano"] / 1e9
        return None

    def close(self) -> None:
        self.process.terminate()
        self.process.wait(10)


def status(url: str) -> dict | None:
    try:
        response = requests.get(url + "/status", timeout=3)
        return response.json() if response.status_code == 200 else None
    except (requests.RequestException, ValueError):
        return None


def wait_for(check, seconds: float):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.5)
    return None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--to", help="commit to upgrade to (default: an empty commit on top)")
    parser.add_argument("--clients", type=int, default=8)
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="ksnode-upgrade-"))
    work.chmod(0o755)
    daemon = ds.Daemon(work)
    daemon.ensure()
    env = {**os.environ, **compose_plugin_config(work), **ds.legacy_build_env()}
    env.pop("KSNODE_GIT_HASH", None)
    base, pg_image = ds.base_image(), ds.postgres_image()
    server_port, pg_port = free_port(), free_port()
    write_operator_files(work, server_port)
    dotenv = work / ".env"
    text = dotenv.read_text().replace(
        "TELEGRAM_BOT_TOKEN=123456:docker-test", f"TELEGRAM_BOT_TOKEN={BOT_TOKEN}"
    )
    dotenv.write_text(text + "RATE_LIMIT_PER_MINUTE=0\nLOG_LEVEL=info\n")
    source = fresh_clone(work / "src")
    git = ["git", "-C", str(source), "-c", "user.name=bench", "-c", "user.email=bench@ksnode.local"]
    ds.run([*git, "add", "-A"])
    ds.run([*git, "commit", "-q", "--allow-empty", "-m", "working tree"])
    if args.to:
        target = args.to
    else:
        ds.run([*git, "commit", "-q", "--allow-empty", "-m", "next release"])
        target = ds.run([*git, "rev-parse", "HEAD"]).stdout.strip()
        ds.run([*git, "checkout", "-q", "HEAD~1"])
    env.update(
        {
            "KSNODE_TEST_SOURCE": str(source),
            "KSNODE_TEST_IMAGE": NODE_IMAGE,
            "KSNODE_TEST_PG_IMAGE": pg_image,
            "KSNODE_TEST_PG_MAJOR": str(ds.postgres_major(pg_image)),
            "KSNODE_TEST_BASE_IMAGE": base,
            "KSNODE_TEST_PG_PORT": str(pg_port),
        }
    )
    stack = Stack(work, env, f"ksnupgrade{os.getpid()}", source)
    url = f"http://127.0.0.1:{server_port}"
    try:
        stack.compose("up", "-d", "--build", timeout=1500)
        before = wait_for(lambda: status(url), 180)
        if before is None:
            print(stack.compose("logs", "--no-color", check=False).stdout[-3000:])
            return 1
        user, key = "424242", secp_key()
        assert v1_register(url, user, key, share_hex()).status_code == 200
        old = stack.container("key_share_node")
        events = Events(env)
        with Load(url, user, key, args.clients) as load:
            time.sleep(3)
            ds.run([*git, "checkout", "-q", target])  # `git checkout <version>`
            t = time.monotonic()
            stack.compose("build", "key_share_node", timeout=1500)
            build_seconds = time.monotonic() - t
            t = time.monotonic()
            stack.compose("up", "-d", "--build", "key_share_node", timeout=600)
            up_seconds = time.monotonic() - t
            after = wait_for(
                lambda: (s := status(url)) and s["git_hash"] != before["git_hash"] and s, 180
            )
            time.sleep(3)
        events.close()
        killed, died = events.first(old, "kill"), events.first(old, "die")
        answers = sorted(load.answers)
        ok_times = [at for at, ok, _ in answers if ok]
        gaps = [b - a for a, b in zip(ok_times, ok_times[1:], strict=False)]
        failed = Counter(reason for _, ok, reason in answers if not ok)
        first_200 = next((at for at in ok_times if died and at > died), None)
        head = ds.run([*git, "rev-parse", "--short", "HEAD"]).stdout.strip()
        print(f"clients: {args.clients}; requests: {len(answers)}; failed: {sum(failed.values())}")
        for reason, count in failed.most_common():
            print(f"  {count:6d}  {reason}")
        print(f"longest gap between answered requests: {max(gaps):.2f} s")
        if killed and first_200:
            print(
                f"old container stop (SIGTERM) to the new one's first 200: {first_200 - killed:.2f} s"
            )
            print(f"old container exit to the new one's first 200: {first_200 - died:.2f} s")
        print(f"`docker compose build`: {build_seconds:.1f} s (old container serving)")
        print(f"`docker compose up -d --build key_share_node`: {up_seconds:.1f} s")
        print(
            f"git_hash before {before['git_hash']}, after {after and after['git_hash']}"
            f" (checkout: {head})"
        )
        return 0
    finally:
        stack.compose("down", "--volumes", "--remove-orphans", timeout=300, check=False)
        ds.run(["docker", "image", "rm", NODE_IMAGE], check=False, timeout=120)
        daemon.stop()


if __name__ == "__main__":
    raise SystemExit(main())
