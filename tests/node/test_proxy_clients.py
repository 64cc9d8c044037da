"""Many clients of one node through a real nginx with the shipped site file
(deploy/nginx/ksnode.conf) and the node at its defaults plus
TRUST_PROXY_HOPS=1: each forwarded address has its own rate-limit budget and
connection allowance, 200 concurrent clients are all served, a hostile
client does not slow the others, and `curl https://…/status` works."""

from __future__ import annotations

import json
import socket
import ssl
import subprocess
import threading
import time

import pytest
import requests

from tests.conftest import create_database
from tests.support.nginx import SERVER_NAME, Nginx
from tests.support.node_process import NodeProcess, database_env
from tests.support.ops import OPS_HEADERS
from tests.support.proxy_clients import client_from, percentile, timed_gets
from tests.support.reference import STATUS_FIELDS

RATE = 60  # requests per minute per client address


@pytest.fixture(scope="module")
def proxied(pg_server, tmp_path_factory):
    folder = tmp_path_factory.mktemp("proxy-clients")
    db_env = database_env(pg_server, create_database(pg_server))
    node = NodeProcess.build(
        folder / "var", db_env, TRUST_PROXY_HOPS="1", RATE_LIMIT_PER_MINUTE=str(RATE)
    )
    nginx = Nginx(node.port, folder / "nginx")
    node.start()
    nginx.start()
    yield node, nginx
    nginx.stop()
    assert node.stop() == 0


def metric(node: NodeProcess, name: str) -> float:
    text = requests.get(node.url + "/metrics", headers=OPS_HEADERS, timeout=10).text
    return sum(float(line.split()[-1]) for line in text.splitlines() if line.startswith(name))


def upstream_connections(port: int) -> int:
    """Established TCP connections to the node's port (nginx's upstream ones)."""
    out = subprocess.run(
        ["ss", "-Htn", "state", "established", f"( dport = :{port} )"],
        capture_output=True,
        text=True,
    ).stdout
    return len(out.splitlines())


def test_curl_https_status_through_the_proxy(proxied):
    _, nginx = proxied
    result = subprocess.run(
        [
            "curl",
            "-sS",
            "--cacert",
            str(nginx.cert),
            "--resolve",
            f"{SERVER_NAME}:{nginx.port}:127.0.0.1",
            f"https://{SERVER_NAME}:{nginx.port}/status",
        ],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 0, result.stderr

    assert tuple(json.loads(result.stdout)) == STATUS_FIELDS


def test_200_concurrent_clients_are_all_served(proxied):
    node, nginx = proxied
    refused_before = metric(node, "ksnode_connections_refused_total")
    clients, rounds = 200, 3
    barrier = threading.Barrier(clients)
    statuses: list[int | str] = []
    peak = [0]
    done = threading.Event()

    def client(index: int) -> None:
        # 4 clients per address: 50 addresses, each within its rate budget.
        with client_from(f"127.0.1.{index // 4 + 1}", nginx.cert) as session:
            barrier.wait(60)
            for _ in range(rounds):
                try:
                    statuses.append(session.get(nginx.url + "/status", timeout=60).status_code)
                except requests.RequestException as exc:
                    statuses.append(type(exc).__name__)

    def watch() -> None:
        while not done.wait(0.05):
            peak[0] = max(peak[0], upstream_connections(node.port))

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    watcher = threading.Thread(target=watch)
    watcher.start()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    done.set()
    watcher.join()
    failed = [s for s in statuses if s != 200]
    print(
        f"\n200 clients through nginx: {len(statuses)} requests, {len(failed)} failed, "
        f"peak upstream connections {peak[0]}"
    )
    assert len(statuses) == clients * rounds
    assert failed == []
    assert metric(node, "ksnode_connections_refused_total") == refused_before


def test_each_forwarded_address_has_its_own_rate_budget(proxied):
    _, nginx = proxied
    with client_from("127.0.2.1", nginx.cert) as a, client_from("127.0.2.2", nginx.cert) as b:
        codes = [a.get(nginx.url + "/status").status_code for _ in range(RATE + 5)]
        assert codes[:RATE] == [200] * RATE
        assert codes[RATE:] == [429] * 5
        limited = a.get(nginx.url + "/status")
        assert limited.json()["code"] == "RATE_LIMIT_EXCEEDED"
        # A forged X-Forwarded-For does not give A another budget: the node
        # counts from the right, where nginx put A's real address.
        forged = a.get(nginx.url + "/status", headers={"X-Forwarded-For": "198.51.100.7"})
        assert forged.status_code == 429
        assert b.get(nginx.url + "/status").status_code == 200


def tls_socket(nginx: Nginx, source: str) -> ssl.SSLSocket:
    raw = socket.socket()
    raw.settimeout(15)
    raw.bind((source, 0))
    raw.connect(("127.0.0.1", nginx.port))
    return nginx.ssl_context().wrap_socket(raw, server_hostname="127.0.0.1")


def test_each_forwarded_address_has_its_own_connection_allowance(proxied):
    _, nginx = proxied
    # 100 requests from A whose bodies never come: each holds one of A's
    # 100 connections (limit_conn) until nginx's body timeout.
    held = []
    try:
        for _ in range(100):
            sock = tls_socket(nginx, "127.0.3.1")
            sock.sendall(
                b"POST /keyshare/v1/ HTTP/1.1\r\nHost: ks\r\nContent-Type: application/json\r\n"
                b"Content-Length: 50\r\n\r\n"
            )
            held.append(sock)
        time.sleep(0.5)
        with client_from("127.0.3.1", nginx.cert) as a, client_from("127.0.3.2", nginx.cert) as b:
            over = a.get(nginx.url + "/status")
            assert over.status_code == 429
            assert over.json()["code"] == "RATE_LIMIT_EXCEEDED"
            assert b.get(nginx.url + "/status").status_code == 200
    finally:
        for sock in held:
            sock.close()


def test_a_hostile_client_does_not_take_the_others_down(proxied):
    _, nginx = proxied
    url = nginx.url + "/status"
    with client_from("127.0.4.2", nginx.cert) as calm:
        baseline, failed = timed_gets(calm, url, 50)
    assert failed == 0
    stop = threading.Event()
    idle: list[socket.socket] = []
    slow: list[ssl.SSLSocket] = []

    def flood() -> None:
        with client_from("127.0.4.1", nginx.cert) as session:
            while not stop.is_set():
                try:
                    session.get(url, timeout=10)
                except requests.RequestException:
                    pass

    def slowloris() -> None:
        while not stop.wait(1.0):
            for sock in slow:
                try:
                    sock.sendall(b"X-a: b\r\n")
                except OSError:
                    pass

    try:
        for _ in range(300):  # TCP only: never a TLS handshake
            sock = socket.socket()
            sock.bind(("127.0.4.1", 0))
            sock.connect(("127.0.0.1", nginx.port))
            idle.append(sock)
        for _ in range(50):
            sock = tls_socket(nginx, "127.0.4.1")
            sock.sendall(b"GET /status HTTP/1.1\r\nHost: ks\r\n")
            slow.append(sock)
        attackers = [threading.Thread(target=flood) for _ in range(3)]
        attackers.append(threading.Thread(target=slowloris))
        for thread in attackers:
            thread.start()
        time.sleep(0.5)
        with client_from("127.0.4.3", nginx.cert) as calm:
            attacked, failed = timed_gets(calm, url, 50)
    finally:
        stop.set()
        for sock in [*idle, *slow]:
            sock.close()
    for thread in attackers:
        thread.join(30)
    before, during = percentile(baseline, 0.99), percentile(attacked, 0.99)
    print(
        f"\nwell-behaved client p99 through nginx: {before * 1000:.0f} ms alone, "
        f"{during * 1000:.0f} ms beside a hostile client (300 idle, 50 slowloris, flood)"
    )
    assert failed == 0
    assert during < max(1.0, 10 * before)
