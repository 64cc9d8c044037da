"""The load balancer health check docs/operator.md recommends (GET /health
through the proxy, healthy on 200, unhealthy otherwise) goes unhealthy when
the node's database is gone and healthy again when it is back."""

from __future__ import annotations

import pytest

from shared.db.embedded import EmbeddedPostgres, free_port
from tests.support.nginx import Nginx
from tests.support.node_process import NodeProcess
from tests.support.processes import wait_until
from tests.support.proxy_clients import client_from


@pytest.fixture
def database(tmp_path):
    # A fixed port: the node finds the database where it was after a restart.
    server = EmbeddedPostgres(tmp_path / "pg" / "pg_data", port=free_port())
    running = server.start()
    server.create_database("key_share_node")
    yield server, running
    server.stop()


def test_the_recommended_health_check_follows_the_database(database, tmp_path):
    server, running = database
    db_env = {
        "DB_HOST": running.host,
        "DB_PORT": str(running.port),
        "DB_USER": "postgres",
        "DB_PASSWORD": running.password,
        "DB_NAME": "key_share_node",
    }
    node = NodeProcess.build(tmp_path / "var", db_env, TRUST_PROXY_HOPS="1")
    nginx = Nginx(node.port, tmp_path / "nginx")
    node.start()
    nginx.start()
    try:
        with client_from("127.0.5.1", nginx.cert) as balancer:

            def check() -> int:
                return balancer.get(nginx.url + "/health", timeout=10).status_code

            assert wait_until(lambda: check() == 200, 30)
            server.stop()
            assert wait_until(lambda: check() == 503, 30)
            down = balancer.get(nginx.url + "/health", timeout=10).json()
            assert down["status"] == "down"
            assert {"reason": "database_unavailable"} in down["reasons"]
            # /status stays 200 (the reference's answer): not a health check.
            assert balancer.get(nginx.url + "/status", timeout=10).status_code == 200
            assert server.start().port == running.port
            assert wait_until(lambda: check() == 200, 60)
    finally:
        nginx.stop()
        assert node.stop() == 0
