"""`ksnode up` checks what it can before starting and fails with one line;
in the foreground it shows the programs' log lines; a second `up` in the
same home names the running one."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import requests

from shared.db.embedded import free_port
from tests.conftest import admin_connection

ROOT = Path(__file__).resolve().parents[2]
KSNODE = [sys.executable, "-c", "from shared.cli import main; main()"]


def base_env(home: Path, port: int, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DB_", "PORT", "KSNODE_"))}
    env.update(
        {
            "KSNODE_HOME": str(home),
            "PORT": str(port),
            "HOST": "127.0.0.1",
            "HEARTBEAT_INTERVAL_SECONDS": "1",
        }
    )
    env.update(extra)
    return env


def up_once(env: dict[str, str], **kw) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*KSNODE, "up"], env=env, capture_output=True, text=True, timeout=120, cwd=ROOT, **kw
    )


def one_line(text: str) -> str:
    lines = [line for line in text.splitlines() if line.strip()]
    assert len(lines) == 1, text
    assert "Traceback" not in text
    return lines[0]


def test_port_in_use_fails_before_starting_anything(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        started = time.monotonic()
        result = up_once(base_env(tmp_path / "var", port))
    assert result.returncode == 1
    line = one_line(result.stderr)
    assert f"port {port} on 127.0.0.1 is not available" in line and "PORT" in line
    assert time.monotonic() - started < 20
    assert not (tmp_path / "var" / "pg_data").exists()  # nothing was started
    assert not (tmp_path / "var" / "run" / "supervisord.pid").exists()


def test_unwritable_dump_dir_fails_with_one_line(tmp_path):
    dump = tmp_path / "dump"
    dump.mkdir()
    # Root writes through permission bits; the immutable flag stops it too.
    if os.geteuid() == 0:
        subprocess.run(["chattr", "+i", str(dump)], check=True)
    else:
        dump.chmod(0o555)
    try:
        result = up_once(base_env(tmp_path / "var", free_port(), DUMP_DIR=str(dump)))
    finally:
        if os.geteuid() == 0:
            subprocess.run(["chattr", "-i", str(dump)], check=True)
        dump.chmod(0o755)
    assert result.returncode == 1
    line = one_line(result.stderr)
    assert f"DUMP_DIR {dump} is not writable" in line
    assert not (tmp_path / "var" / "pg_data").exists()


def test_missing_secret_fails_with_one_line(tmp_path, pg_server):
    env = base_env(
        tmp_path / "var",
        free_port(),
        DB_HOST=pg_server.host,
        DB_PORT=str(pg_server.port),
        ENCRYPTION_SECRET_PATH=str(tmp_path / "no-such-secret.txt"),
    )
    result = up_once(env)
    assert result.returncode == 1
    assert "no-such-secret.txt" in one_line(result.stderr)


@pytest.fixture(scope="module")
def sql_ascii_db(pg_server) -> str:
    name = "ksn_sql_ascii"
    conn = admin_connection(pg_server)
    with conn.cursor() as cur:
        cur.execute(
            f"CREATE DATABASE {name} ENCODING 'SQL_ASCII' LC_COLLATE 'C' LC_CTYPE 'C' TEMPLATE template0"
        )
    conn.close()
    return name


def test_migrations_are_plain_ascii():
    folder = ROOT / "shared" / "db" / "migrations"
    for path in sorted(folder.glob("*.sql")):
        path.read_bytes().decode("ascii")  # raises on any other byte


def test_migrate_runs_on_a_sql_ascii_database(pg_server, sql_ascii_db, env_for):
    from shared.config import load_config
    from shared.db.migrations import run_migrations

    applied = run_migrations(load_config(env_for(sql_ascii_db)))
    assert "0001_reference_schema.sql" in applied


def test_up_refuses_a_sql_ascii_database_with_one_line(tmp_path, pg_server, sql_ascii_db, env_for):
    env = base_env(tmp_path / "var", free_port())
    env.update({k: v for k, v in env_for(sql_ascii_db).items() if k.startswith(("DB_", "ENC"))})
    result = up_once(env)
    assert result.returncode == 1
    line = one_line(result.stderr)
    assert f"database {sql_ascii_db} uses encoding SQL_ASCII" in line and "UTF8" in line


class Foreground:
    """`ksnode up` with its stdout read into a list as it comes."""

    def __init__(self, env: dict[str, str]):
        self.lines: list[str] = []
        self.process = subprocess.Popen(
            [*KSNODE, "up"],
            env=env,
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        for line in self.process.stdout:
            self.lines.append(line.rstrip("\n"))

    def programs(self) -> set[str]:
        found = set()
        for line in list(self.lines):
            try:
                found.add(json.loads(line)["program"])
            except (ValueError, KeyError, TypeError):
                pass
        return found

    def stop(self) -> int:
        self.process.send_signal(signal.SIGTERM)
        code = self.process.wait(90)
        self.reader.join(10)
        return code


def wait_for(predicate, timeout: float):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    return None


@pytest.fixture(scope="module")
def foreground(tmp_path_factory):
    home = tmp_path_factory.mktemp("fg") / "var"
    port = free_port()
    node = Foreground(base_env(home, port))

    def status():
        try:
            return requests.get(f"http://127.0.0.1:{port}/status", timeout=1).ok
        except requests.RequestException:
            return False

    assert wait_for(status, 60), "\n".join(node.lines)
    yield {"node": node, "home": home, "port": port}
    if node.process.poll() is None:
        node.process.kill()
        node.process.wait(30)


def test_foreground_shows_every_programs_log_lines(foreground):
    node = foreground["node"]
    wanted = {"ksnode", "api", "backup_worker", "reporter"}
    assert wait_for(lambda: wanted <= node.programs(), 30), "\n".join(node.lines)


def test_foreground_has_no_supervisord_crit_lines(foreground):
    node = foreground["node"]
    assert wait_for(lambda: "supervisord" in node.programs(), 30)
    for line in node.lines:
        assert "CRIT" not in line and '"level": "critical"' not in line, line


def test_second_up_in_the_same_home_names_the_running_node(foreground):
    env = base_env(foreground["home"], free_port())
    result = up_once(env)
    assert result.returncode == 1
    line = one_line(result.stderr)
    pid = foreground["node"].process.pid
    assert f"a node is already running in this home (pid {pid})" in line


def test_stop_prints_the_programs_last_lines_and_exits_zero(foreground):
    node = foreground["node"]
    before = len(node.lines)
    assert node.stop() == 0
    after = set()
    for line in node.lines[before:]:
        try:
            after.add(json.loads(line)["program"])
        except (ValueError, KeyError, TypeError):
            pass
    assert after & {"api", "backup_worker", "reporter"}, node.lines[before:]


def test_up_listens_on_server_port_the_guides_name(tmp_path):
    # SERVER_PORT alone decides the port: the preflight finds it taken.
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = base_env(tmp_path / "var", port, SERVER_PORT=str(port))
        del env["PORT"]
        result = up_once(env)
    assert result.returncode == 1
    assert f"port {port} on 127.0.0.1 is not available" in one_line(result.stderr)


def test_up_names_port_and_server_port_when_they_disagree(tmp_path):
    result = up_once(base_env(tmp_path / "var", free_port(), SERVER_PORT="4999"))
    assert result.returncode == 2
    assert "SERVER_PORT=4999" in result.stderr and "disagree" in result.stderr
    assert not (tmp_path / "var" / "pg_data").exists()
