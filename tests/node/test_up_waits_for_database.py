"""`ksnode up` before its external Postgres is up (a host just rebooted):
it waits, saying why on each attempt, keeps the API port closed meanwhile
(clients are refused at once), and starts serving as soon as the database
answers; SIGTERM while waiting stops it cleanly. Not a crash loop under
Docker's restart policy. Real `ksnode up`, real Postgres started late."""

from __future__ import annotations

import signal
import socket
import time

import pytest

from shared.db.embedded import EmbeddedPostgres, free_port
from tests.support.node_process import NodeProcess
from tests.support.processes import wait_until

LATE_PASSWORD = "late-database-password"


@pytest.fixture()
def late_node(tmp_path):
    db_port = free_port()
    db_env = {
        "DB_HOST": "127.0.0.1",
        "DB_PORT": str(db_port),
        "DB_USER": "postgres",
        "DB_PASSWORD": LATE_PASSWORD,
    }
    node = NodeProcess.build(tmp_path / "var", {**db_env, "DB_NAME": "key_share_node"})
    node.launch()
    yield node, db_port
    node.stop()


def refused(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
    except ConnectionRefusedError:
        return True
    return False


def test_up_waits_for_a_late_database_then_serves(late_node, tmp_path):
    node, db_port = late_node
    assert wait_until(lambda: node.up_output().count("up.waiting_for_database") >= 2, 30)
    assert node.process.poll() is None, node.up_output()
    assert "Connection refused" in node.up_output()
    assert refused(node.port)  # not a client left hanging in a backlog
    data_dir = tmp_path / "late_pg" / "pg_data"
    # Prepare the server and its database on a port the node does not know,
    # so the node never sees the server without its database (a race that
    # `up` rightly treats as a final configuration error).
    staging = EmbeddedPostgres(data_dir, port=free_port())
    # The node was given the password before the server existed: seed its file.
    staging.password_file.parent.mkdir(parents=True)
    staging.password_file.write_text(LATE_PASSWORD)
    staging.start()
    try:
        staging.create_database("key_share_node")
    finally:
        staging.stop()
    assert refused(node.port) and node.process.poll() is None
    server = EmbeddedPostgres(data_dir, port=db_port)
    server.start()
    try:
        started = time.monotonic()
        assert wait_until(node.status, 60, interval=0.5), node.up_output()[-2000:]
        print(f"served {time.monotonic() - started:.1f} s after the database came up")
        assert "up.database_reachable" in node.up_output()
        assert node.stop() == 0
    finally:
        server.stop()


def test_sigterm_while_waiting_stops_cleanly(late_node):
    node, _db_port = late_node
    assert wait_until(lambda: "up.waiting_for_database" in node.up_output(), 30)
    node.process.send_signal(signal.SIGTERM)
    started = time.monotonic()
    assert node.process.wait(10) == 0
    assert time.monotonic() - started < 5
    assert "stopped while waiting for the database" in node.up_output()
    assert "Traceback" not in node.up_output()
