"""`ksnode ctl restart api` and `ksnode reload` under a load of key share
reads (POSTs) through a real nginx with its keep-alive pool to the node
(deploy/nginx/ksnode.conf): no request is lost. nginx does not retry a
POST, so a pooled connection the draining node closes under a request
would reach the client as a 503 (the site file's JSON for a 502)."""

from __future__ import annotations

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
