"""Reloading the api program in place, with a worker accepting at every moment.

A restart (``ksnode ctl restart api``) leaves a gap: the old workers stop,
connections wait in the kept socket's backlog (shared/node/listener.py) until
the new program has started, a second or two. ``ksnode reload`` avoids
even that wait by sending SIGHUP to the api program instead:

1. the pool parent re-executes itself (``os.execv``): the same pid, so
   supervisord sees nothing, but new code from disk. It passes on the
   listening socket's file descriptor and the pids of its running workers
   (``--handover-fd``, ``--old-workers``); the workers keep serving;
2. the new image starts as usual, forks a new generation of workers on the
   same socket, and once every new worker is serving (its slot in the
   connection table is live), sends SIGTERM to the old ones, which drain
   exactly as on a restart;
3. old and new workers never both stop accepting: no request waits.

Before step 1 the parent runs shared/node/codecheck.py on the code on disk: if
that code cannot start (an import fails, a setting or secret file is bad),
it does not re-execute; it logs ``api.reload_refused`` with the reason,
records it for `ksnode reload` (shared/node/reloadstate.py) and goes on serving
the old code. Should the new image still fail after the check passed, the
re-executed parent exits; the old workers notice that their parent is gone
(``watch_parent``), drain and exit, and supervisord restarts the program.
With one worker (no pool parent) the reload command restarts the program
instead.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import socket
import sys
from dataclasses import dataclass, field
from typing import NoReturn

READY_SECONDS = 30.0  # after this, old workers are stopped even if a new one is not serving


@dataclass
class Handover:
    fd: int | None = None
    old_workers: list[int] = field(default_factory=list)


def parse_args(argv: list[str]) -> Handover:
    parser = argparse.ArgumentParser(prog="services.api")
    parser.add_argument("--handover-fd", type=int)
    parser.add_argument("--old-workers", default="")
    args = parser.parse_args(argv)
    old = [int(pid) for pid in args.old_workers.split(",") if pid.strip()]
    return Handover(args.handover_fd, old)


def reexec(sock: socket.socket, workers: list[int]) -> NoReturn:
    """Replace this process's image with a fresh api program (never returns)."""
    sock.set_inheritable(True)
    # A caught signal reverts to its default (terminate, for SIGHUP) across
    # exec; an ignored one stays ignored until the new image installs its
    # handler, so a second reload meanwhile cannot kill the pool's parent.
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    logging.shutdown()  # flush; the new image opens its own log handlers
    os.execv(
        sys.executable,
        [
            sys.executable,
            "-m",
            "services.api",
            "--handover-fd",
            str(sock.fileno()),
            "--old-workers",
            ",".join(str(pid) for pid in workers),
        ],
    )
