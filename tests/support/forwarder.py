"""A small TCP forwarder standing for a DNS name that moves on failover: new
connections go to whatever port it points at now; connections already made
stay with the server they reached (as with a real name's old address)."""

from __future__ import annotations

import contextlib
import socket
import threading

from shared.db.embedded import free_port


class Forwarder:
    def __init__(self, target_port: int):
        self.port = free_port()
        self.target_port = target_port
        self._server = socket.create_server(("127.0.0.1", self.port))
        self._stop = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def point_at(self, port: int) -> None:
        self.target_port = port

    def close(self) -> None:
        self._stop.set()
        self._server.close()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self._server.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target_port), timeout=3)
                upstream.settimeout(None)
            except OSError:
                client.close()  # like a refused connection: libpq tries again or fails fast
                continue
            for src, dst in ((client, upstream), (upstream, client)):
                threading.Thread(target=_pipe, args=(src, dst), daemon=True).start()


def _pipe(src: socket.socket, dst: socket.socket) -> None:
    try:
        while data := src.recv(65536):
            dst.sendall(data)
    except OSError:
        pass
    finally:
        for sock in (src, dst):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
