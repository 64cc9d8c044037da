"""supervisord's first loop is woken by a connection on its socket
(shared/node/supervise.py), so `ksnode up` does not wait a poll() second
before the programs are spawned."""

from __future__ import annotations

import socket
import threading
import time

from shared.node.supervise import wake_first_loop


def test_connects_once_the_socket_listens_even_after_a_stale_file(tmp_path):
    path = tmp_path / "supervisor.sock"
    # an earlier run's file: bound, never listening (connect is refused)
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(str(path))
    stale.close()
    waker = threading.Thread(target=wake_first_loop, args=(path,), daemon=True)
    waker.start()
    time.sleep(0.2)
    assert waker.is_alive()  # still trying: nothing listens yet
    path.unlink()
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as server:
        server.bind(str(path))
        server.listen(1)
        server.settimeout(5)
        conn, _ = server.accept()  # the wake-up
        conn.close()
    waker.join(5)
    assert not waker.is_alive()


def test_gives_up_when_nothing_ever_listens(tmp_path, monkeypatch):
    monkeypatch.setattr("shared.node.supervise.WAKE_WITHIN_SECONDS", 0.3)
    started = time.monotonic()
    wake_first_loop(tmp_path / "missing.sock")
    assert time.monotonic() - started < 2
