"""A bad night, all at once, under load: an API worker, the backup worker and
the embedded Postgres killed with SIGKILL, the api restarted, the node
reloaded, while clients register and read shares. Every request gets an
answer (a 200, or a 503 JSON while the database is away; only those the
killed worker was serving lose their connection), none takes long,
no registration that was answered 200 is lost, and the node ends healthy.
Bounded: about 25 s of load, four clients. Real `ksnode up`, real
supervisord, embedded Postgres."""

from __future__ import annotations

import os
import signal
import threading
import time
from dataclasses import dataclass, field

import pytest
import requests

from shared.node.reload import children
from tests.support.fakes.telegram import BOT_TOKEN
from tests.support.keyshare_helpers import secp_key, share_hex, v1_get, v1_register
from tests.support.node_process import NodeProcess
from tests.support.processes import wait_until

CLIENTS = 4
SLOWEST_ALLOWED = 15.0  # seconds; DB_QUERY_TIMEOUT_SECONDS is 5 here


@dataclass
class Outcomes:
    answers: dict[str, int] = field(default_factory=dict)
    wrong: list[str] = field(default_factory=list)
    slowest: float = 0.0
    stored: list[tuple[str, str, str]] = field(default_factory=list)  # answered 200
    lock: threading.Lock = field(default_factory=threading.Lock)

    dropped: list[float] = field(default_factory=list)  # when a request had no answer

    def note(self, what: str, response, took: float) -> None:
        with self.lock:
            self.slowest = max(self.slowest, took)
            if isinstance(response, Exception):
                # Allowed only for requests the killed worker was serving (below).
                self.dropped.append(time.monotonic())
                self.wrong.append(f"{what}: {type(response).__name__}")
                return
            key = f"{what} {response.status_code}"
            self.answers[key] = self.answers.get(key, 0) + 1
            try:
                body = response.json()
            except ValueError:
                self.wrong.append(f"{what}: {response.status_code} not JSON")
                return
            if response.status_code == 503 and body.get("code") == "SERVICE_UNAVAILABLE":
                return
            if response.status_code != 200:
                self.wrong.append(f"{what}: {response.status_code} {body.get('code')}")


def client(node: NodeProcess, index: int, stop: threading.Event, out: Outcomes) -> None:
    n = 0
    while not stop.is_set():
        n += 1
        user, key, share = f"77{index}{n}", secp_key(), share_hex()
        for what in ("register", "get"):
            started = time.monotonic()
            try:
                if what == "register":
                    response = v1_register(node.url, user, key, share, timeout=30)
                else:
                    response = v1_get(node.url, user, key, timeout=30)
            except requests.RequestException as exc:
                response = exc
            out.note(what, response, time.monotonic() - started)
            if what == "register":
                if getattr(response, "status_code", None) != 200:
                    break  # not stored: nothing to read back
                with out.lock:
                    out.stored.append((user, key, share))


@pytest.fixture()
def node(tmp_path):
    node = NodeProcess.build(
        tmp_path / "var", {}, TELEGRAM_BOT_TOKEN=BOT_TOKEN, DB_QUERY_TIMEOUT_SECONDS="5"
    ).start(120)
    yield node
    assert node.stop() == 0


def postmaster_pid(node: NodeProcess) -> int:
    return int((node.home / "pg_data" / "postmaster.pid").read_text().split()[0])


def test_a_bad_night_under_load_loses_nothing(node):
    programs = wait_until(lambda: (p := node.pids()) and len(p) == 3 and p, 30)
    out = Outcomes()
    stop = threading.Event()
    threads = [
        threading.Thread(target=client, args=(node, i, stop, out), daemon=True)
        for i in range(CLIENTS)
    ]
    for thread in threads:
        thread.start()
    steps = []

    def step(name: str, action) -> None:
        time.sleep(2.0)
        steps.append((name, time.monotonic()))
        action()

    try:
        step("kill -9 an api worker", lambda: os.kill(children(programs["api"])[0], 9))
        step("kill -9 backup_worker", lambda: os.kill(programs["backup_worker"], 9))
        step("kill -9 postgres", lambda: os.kill(postmaster_pid(node), signal.SIGKILL))
        step("wait for postgres", lambda: wait_until(node.status, 60))
        step("restart api", lambda: node.ksnode("ctl", "restart", "api"))
        step("reload", lambda: node.ksnode("reload"))
        time.sleep(3.0)
    finally:
        stop.set()
        for thread in threads:
            thread.join(60)
    print(
        f"chaos: {[name for name, _ in steps]}; answers {out.answers}; "
        f"no answer {len(out.dropped)}; slowest {out.slowest:.1f} s"
    )
    assert len(steps) == 6
    # Requests in flight on the worker killed with SIGKILL lose their
    # connection (at most one per client); nothing else may go unanswered:
    # not the backup worker's or Postgres's death, not a restart or reload.
    killed_at = steps[0][1]
    assert len(out.dropped) <= CLIENTS
    assert all(killed_at <= at <= killed_at + 2.0 for at in out.dropped), (out.dropped, steps)
    wrong = [w for w in out.wrong if not w.endswith("ConnectionError")]
    assert not wrong, wrong[:10]
    assert out.slowest < SLOWEST_ALLOWED
    assert out.answers.get("register 200", 0) > 20
    # Nothing answered 200 was lost.
    lost = []
    for user, key, share in out.stored:
        r = v1_get(node.url, user, key)
        if r.status_code != 200 or r.json()["data"]["share"] != share:
            lost.append((user, r.status_code))
    assert not lost, lost[:10]

    def healthy() -> bool:
        body = requests.get(node.url + "/health", timeout=10).json()
        return not [x for x in body["reasons"] if x["reason"] != "backup_overdue"]

    assert wait_until(healthy, 60, interval=1.0), requests.get(node.url + "/health").text
