"""The database watchdog on its own: it ends a read that would wait
forever, leaves operations that finish in time alone, and survives a fork
taken while its thread holds its lock (the api's parent forks its workers
after using the database). test_stuck_database.py covers it end to end."""

from __future__ import annotations

import os
import socket
import time

from shared.db.watchdog import Watchdog


class Conn:
    """Stands in for a psycopg2 connection: the watchdog needs its fileno()."""

    def __init__(self, sock: socket.socket):
        self.sock = sock

    def fileno(self) -> int:
        return self.sock.fileno()


def test_a_read_past_its_deadline_is_ended():
    ours, theirs = socket.socketpair()  # "theirs" never answers: a frozen server
    watchdog = Watchdog(check_seconds=0.05)
    conn = Conn(ours)
    started = time.monotonic()
    with watchdog.watch(conn, 0.3):
        data = ours.recv(10)  # would block forever
    took = time.monotonic() - started
    assert data == b"" and 0.3 <= took < 2.0
    assert watchdog.was_cut(conn) and not watchdog.was_cut(conn)  # reported once
    assert watchdog.cuts == 1
    ours.close()
    theirs.close()


def test_an_operation_that_finishes_in_time_is_left_alone():
    ours, theirs = socket.socketpair()
    watchdog = Watchdog(check_seconds=0.05)
    conn = Conn(ours)
    with watchdog.watch(conn, 0.5):
        theirs.sendall(b"answer")
        assert ours.recv(10) == b"answer"
    time.sleep(0.7)  # past the deadline: the watch has ended, nothing is cut
    theirs.sendall(b"again")
    assert ours.recv(10) == b"again"
    assert not watchdog.was_cut(conn) and watchdog.cuts == 0
    ours.close()
    theirs.close()


def test_a_fork_while_the_lock_is_held_leaves_the_child_a_usable_watchdog():
    watchdog = Watchdog(check_seconds=0.01)
    with watchdog._lock:  # as the watchdog thread may hold it at the fork
        pid = os.fork()
        if pid == 0:  # the child: its first watched operation must not hang
            ours, _theirs = socket.socketpair()
            code = 1
            try:
                with watchdog.watch(Conn(ours), 5.0):
                    code = 0
            finally:
                os._exit(code)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        time.sleep(0.05)
    else:
        os.kill(pid, 9)
        os.waitpid(pid, 0)
        raise AssertionError("the child hung on the watchdog's lock")
    assert os.waitstatus_to_exitcode(status) == 0
