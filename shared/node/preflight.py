"""Checks `ksnode up` makes before it starts anything.

Each failure is one line naming the setting to change, instead of a program
crash-looping under supervisord with the cause in a capture file: another
node in this home, the API port taken, a folder the programs cannot write,
an embedded database that would live in a container's throw-away layer, a
database whose encoding cannot hold what the node stores.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import socket
import tempfile
from pathlib import Path

from shared.config import Config
from shared.errors import NodeFailure
from shared.infra.pids import pid_alive
from shared.infra.safefiles import open_regular

LOCK_NAME = "ksnode.lock"


class PreflightFailed(NodeFailure):
    """The node cannot start; the message says why and what to change."""


def _live_pid(path: Path) -> int | None:
    try:
        pid = int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None
    return pid if pid_alive(pid) else None


class HomeLock:
    """An exclusive lock on ``run/ksnode.lock`` held while `ksnode up` runs;
    the file holds the holder's pid for the message a second start prints."""

    def __init__(self, run_dir: Path):
        self.path = run_dir / LOCK_NAME
        self.supervisord_pid_file = run_dir / "supervisord.pid"
        self.fd: int | None = None

    def acquire(self) -> HomeLock:
        # The run folder may have been the programs' account's (`ksnode up`
        # as root before this version): never truncate what a link names.
        fd = open_regular(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            holder = _live_pid(self.path)
            raise PreflightFailed(
                f"a node is already running in this home (pid {holder or 'unknown'}); "
                "stop it first or use another KSNODE_HOME"
            ) from None
        # A supervisord whose launcher was killed still runs the programs.
        orphan = _live_pid(self.supervisord_pid_file)
        if orphan is not None and _is_supervisord(orphan):
            os.close(fd)
            raise PreflightFailed(
                f"a node is already running in this home (pid {orphan}, supervisord); "
                "stop it first or use another KSNODE_HOME"
            )
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self.fd = fd
        return self

    def release(self) -> None:
        if self.fd is not None:
            with contextlib.suppress(OSError):
                os.ftruncate(self.fd, 0)
            os.close(self.fd)
            self.fd = None


def _is_supervisord(pid: int) -> bool:
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return True  # cannot tell: assume the pid file is right
    return b"supervisor" in cmdline


def check_port(config: Config) -> None:
    """The API port must be free: the api program would crash-loop otherwise."""
    if config.port == 0:
        return
    family = socket.AF_INET6 if ":" in config.host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        # Same options as the api's listener, so only a live listener counts.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((config.host, config.port))
        except OSError as exc:
            raise PreflightFailed(
                f"port {config.port} on {config.host} is not available ({exc.strerror}): "
                "stop what listens there or set PORT (or SERVER_PORT) to a free port"
            ) from None


def check_writable(folders: dict[str, Path]) -> None:
    """Each folder must take a new file from this user (the programs run as it)."""
    for setting, folder in folders.items():
        try:
            with tempfile.NamedTemporaryFile(dir=folder, prefix=".ksnode-write-test-"):
                pass
        except OSError as exc:
            raise PreflightFailed(
                f"{setting} {folder} is not writable by uid {os.getuid()} ({exc.strerror}): "
                f"fix its owner or permissions"
            ) from None


def container_layer(path: Path) -> bool:
    """Whether ``path`` lies on an overlay file system root, i.e. the writable
    layer of a container rather than a mounted volume."""
    try:
        lines = Path("/proc/self/mountinfo").read_text().splitlines()
    except OSError:
        return False
    target = str(path.resolve())
    best, best_type = "", ""
    for line in lines:
        left, _, right = line.partition(" - ")
        fields, rest = left.split(), right.split()
        if len(fields) < 5 or not rest:
            continue
        mount_point = fields[4].replace("\\040", " ")
        inside = target == mount_point or target.startswith(mount_point.rstrip("/") + "/")
        if inside and len(mount_point) >= len(best):
            best, best_type = mount_point, rest[0]
    return best == "/" and best_type == "overlay"


def check_embedded_storage(config: Config, allow_ephemeral: bool) -> None:
    if not config.embedded_db or allow_ephemeral:
        return
    if container_layer(config.pg_data_dir.parent):
        raise PreflightFailed(
            "DB_HOST is not set and KSNODE_HOME "
            f"({config.home}) is in the container's own file system: the embedded "
            "database would be lost with the container. Set DB_HOST (see "
            "docker/docker-compose.yml), mount a volume on KSNODE_HOME, or set "
            "ALLOW_EPHEMERAL_DB=true for a throw-away node"
        )


def check_encoding(name: str, encoding: str) -> None:
    if encoding.upper() not in ("UTF8", "UTF-8"):
        raise PreflightFailed(
            f"database {name} uses encoding {encoding}; ksnode needs UTF8: create it with "
            f"CREATE DATABASE ... ENCODING 'UTF8' TEMPLATE template0 and restore into it"
        )
