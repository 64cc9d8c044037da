"""`ksnode ctl restart api` and `ksnode reload` under a load of key share
reads (POSTs) through a real nginx with its keep-alive pool to the node
(deploy/nginx/ksnode.conf): no request is lost. nginx does not retry a
POST, so a pooled connection the draining node closes under a request
would reach the client as a 503 (the site file's JSON for a 502)."""

from __future__ import annotations

import socket
import threading
import time

import pytest
import requests

from tests.conftest import create_database
from tests.support.fakes.telegram import BOT_TOKEN, bearer
from tests.support.keyshare_helpers import new_user_id, secp_key, share_hex
from tests.support.nginx import Nginx
from tests.support.node_process import NodeProcess, database_env
from tests.support.post_load import PostLoad
from tests.support.processes import wait_until

CLIENTS = 16


@pytest.fixture(scope="module")
def proxied(pg_server, tmp_path_factory):
    folder = tmp_path_factory.mktemp("proxy-restart")
    db_env = database_env(pg_server, create_database(pg_server))
    node = NodeProcess.build(
        folder / "var", db_env, TRUST_PROXY_HOPS="1", TELEGRAM_BOT_TOKEN=BOT_TOKEN
    )
    nginx = Nginx(node.port, folder / "nginx")  # before the node: it checks nginx is here
    node.start()
    nginx.start()
    yield node, nginx
    nginx.stop()
    assert node.stop() == 0


@pytest.fixture(scope="module")
def stored(proxied):
    node, _ = proxied
    user, key, share = new_user_id(), secp_key(), share_hex()
    headers = bearer(user)
    body = {"auth_type": "telegram", "curve_type": "secp256k1", "public_key": key}
    r = requests.post(
        node.url + "/keyshare/v1/register", json={**body, "share": share}, headers=headers
    )
    assert r.status_code == 200, r.text
    return {"auth_type": "telegram", "public_key": key}, headers, share


def under_post_load(nginx: Nginx, stored, action):
    body, headers, share = stored
    with PostLoad(nginx.url, nginx.cert, body, headers, share, CLIENTS) as load:
        time.sleep(1.5)
        outcome = action()
        time.sleep(2.0)
        result = load.stop()
    return outcome, result


def test_restart_api_through_the_proxy_loses_no_post(proxied, stored):
    node, nginx = proxied
    before = wait_until(lambda: node.pids().get("api"), 20)
    outcome, result = under_post_load(nginx, stored, lambda: node.ksnode("ctl", "restart", "api"))
    print(
        f"\nrestart api through nginx: {result.ok} POSTs ok, {result.failed} failed, "
        f"longest {result.longest_seconds * 1000:.0f} ms"
    )
    assert "api: started" in outcome.stdout, outcome.stdout + outcome.stderr
    assert node.pids()["api"] != before
    assert result.failed == 0, result.reasons
    assert result.ok > 50


def test_reload_through_the_proxy_loses_no_post(proxied, stored):
    node, nginx = proxied
    outcome, result = under_post_load(nginx, stored, lambda: node.ksnode("reload"))
    print(
        f"\nreload through nginx: {result.ok} POSTs ok, {result.failed} failed, "
        f"longest {result.longest_seconds * 1000:.0f} ms"
    )
    assert outcome.returncode == 0, outcome.stdout + outcome.stderr
    assert "api: reloaded in place" in outcome.stdout
    assert result.failed == 0, result.reasons
    assert result.ok > 50


def test_nginx_logged_no_upstream_failure(proxied):
    _, nginx = proxied
    errors = nginx.output()
    assert "upstream prematurely closed" not in errors
    assert "Connection reset by peer" not in errors


def read_one_response(sock: socket.socket) -> bytes:
    """One HTTP response (head and Content-Length body); b"" if the server
    closed or reset the connection instead."""
    data = b""
    try:
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(65536)
            if not chunk:
                return b""
            data += chunk
        head, body = data.split(b"\r\n\r\n", 1)
        length = next(
            int(line.split(b":", 1)[1])
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-length:")
        )
        while len(body) < length:
            chunk = sock.recv(65536)
            if not chunk:
                return b""
            body += chunk
    except ConnectionResetError:
        return b""
    return data


def test_a_stopping_worker_answers_an_idle_pooled_connection(proxied):
    # What nginx's upstream pool does: a connection used once, idle for a
    # while, then reused for the next request. A stopping worker must answer
    # it (and close after), not close it while idle: the request may already
    # be on its way, and nginx would not retry a POST.
    node, _ = proxied
    request = b"GET /status HTTP/1.1\r\nHost: ksnode\r\n\r\n"
    with socket.create_connection(("127.0.0.1", node.port), timeout=15) as sock:
        sock.sendall(request)
        assert read_one_response(sock).startswith(b"HTTP/1.1 200")
        restart = threading.Thread(target=node.ksnode, args=("ctl", "restart", "api"))
        restart.start()
        time.sleep(2.5)  # the workers got SIGTERM; the connection is 2.5 s idle
        sock.sendall(request)
        answer = read_one_response(sock)
        restart.join(60)
    head = answer.split(b"\r\n\r\n", 1)[0].lower()
    assert answer.startswith(b"HTTP/1.1 200"), answer
    assert b"connection: close" in head
    assert wait_until(node.status, 30)
