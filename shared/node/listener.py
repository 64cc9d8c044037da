"""The API's listening socket, kept open across restarts of the api program.

Why: a restarted program that binds its own socket closes it when it
stops, so for the second or so until the new one listens the kernel
refuses connections. If something that outlives the api program holds the
listening socket, connections that arrive during a restart complete their
TCP handshake and wait in the socket's backlog (LISTEN_BACKLOG) until the
new program accepts them: a restart costs latency, never a refused or
failed request.

Who holds it: ``ksnode up``, the process that starts supervisord and lives
as long as the node (the container's main process under Docker). It binds
HOST:PORT before anything else starts and hands the socket to each api
program that asks, over a unix socket in the run folder
(``run/api-listener.sock``, mode 0600, same-user peers only), by passing
the file descriptor (SCM_RIGHTS). supervisord's own ``[fcgi-program]``
socket would not do: supervisord reference-counts it by running processes
and closes it when the last one stops, i.e. in the middle of ``restart
api``.

An api program started without ``ksnode up`` (no keeper answering) binds
the address itself, as before; restarts then refuse connections briefly.
"""

from __future__ import annotations

import logging
import os
import socket
import struct
import threading
from pathlib import Path

from shared.errors import NodeFailure

log = logging.getLogger(__name__)

LISTEN_BACKLOG = 2048
KEEPER_FILE = "api-listener.sock"
FETCH_TIMEOUT_SECONDS = 2.0
_ACCEPT_POLL_SECONDS = 0.5


class ListenError(NodeFailure):
    """The API address cannot be bound; the message says which and why."""


def keeper_path(run_dir: Path) -> Path:
    return run_dir / KEEPER_FILE


def bind_listening(host: str, port: int, backlog: int = LISTEN_BACKLOG) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
        sock.listen(backlog)
    except OSError as exc:
        sock.close()
        raise ListenError(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    return sock


class SocketKeeper:
    """Holds the API's listening socket and lends it to api programs.

    Use as a context manager around the life of supervisord.
    """

    def __init__(self, host: str, port: int, run_dir: Path):
        self.host = host
        self.port = port
        self.path = keeper_path(run_dir)
        self.listening: socket.socket | None = None
        self._server: socket.socket | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._allowed_uids = {os.getuid()}

    def __enter__(self) -> SocketKeeper:
        if self.listening is None:
            self.start()
        return self

    def start(self) -> None:
        """Bind the API address and start lending it; ListenError if it cannot."""
        self.listening = bind_listening(self.host, self.port)
        self._lend()

    def adopt(self, fd: int) -> None:
        """Lend a listening socket bound earlier, inherited as ``fd`` (the
        keeper after `ksnode up` replaced its image, keeper.py)."""
        self.listening = socket.socket(fileno=fd)
        self.listening.set_inheritable(False)  # not into supervisord and the programs
        self._lend()

    def _lend(self) -> None:
        self.path.unlink(missing_ok=True)
        server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        # Created 0600 from the start (umask), so no other user ever can connect.
        old_umask = os.umask(0o177)
        try:
            server.bind(str(self.path))
        finally:
            os.umask(old_umask)
        server.listen(16)
        server.settimeout(_ACCEPT_POLL_SECONDS)
        self._server = server
        self._thread = threading.Thread(target=self._serve, name="socket-keeper", daemon=True)
        self._thread.start()

    def allow(self, uid: int) -> None:
        """Lend the socket to the programs' account too (``ksnode up`` as root
        runs them as ``ksnode``): it owns the keeper's file, still 0600.
        Never through a link put in its place."""
        os.chown(self.path, uid, -1, follow_symlinks=False)
        self._allowed_uids.add(uid)

    def __exit__(self, *_exc) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        if self._server is not None:
            self._server.close()
        self.path.unlink(missing_ok=True)
        if self.listening is not None:
            self.listening.close()

    def _serve(self) -> None:
        assert self._server is not None and self.listening is not None
        while not self._stop.is_set():
            try:
                conn, _ = self._server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with conn:
                try:
                    conn.settimeout(FETCH_TIMEOUT_SECONDS)
                    if _peer_uid(conn) not in self._allowed_uids:
                        continue
                    socket.send_fds(conn, [b"K"], [self.listening.fileno()])
                except OSError as exc:
                    log.warning(
                        "could not hand the listening socket over",
                        extra={"event": "listener.handover_failed", "error": str(exc)},
                    )


def _peer_uid(conn: socket.socket) -> int:
    creds = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    _pid, uid, _gid = struct.unpack("3i", creds)
    return uid


def fetch_kept_socket(run_dir: Path, port: int) -> socket.socket | None:
    """The listening socket held by ``ksnode up``, or None when no keeper answers
    (or it holds another port, e.g. a stale keeper of a different configuration)."""
    path = keeper_path(run_dir)
    if not path.exists():
        return None
    client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    client.settimeout(FETCH_TIMEOUT_SECONDS)
    try:
        client.connect(str(path))
        _msg, fds, _flags, _addr = socket.recv_fds(client, 16, 1)
    except OSError:
        return None
    finally:
        client.close()
    if not fds:
        return None
    sock = socket.socket(fileno=fds[0])
    for extra in fds[1:]:
        os.close(extra)
    if port and sock.getsockname()[1] != port:
        sock.close()
        return None
    return sock
