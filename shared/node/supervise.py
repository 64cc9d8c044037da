"""supervisord as `ksnode up` runs it: told to stop when `ksnode up` dies.

    python -m shared.node.supervise <pid of ksnode up> <supervisord arguments>

(A module rather than ``python -c "..."`` so that ``ps`` shows what runs.)
"""

from __future__ import annotations

import os
import socket
import sys
import threading
import time
from pathlib import Path

from shared.infra.parentdeath import die_with_parent

WAKE_WITHIN_SECONDS = 10.0


def wake_first_loop(path: Path) -> None:
    """Connect once to supervisord's socket as soon as it listens.

    supervisord starts the programs in its main loop, after a poll() that
    waits up to a second for an event: without one, every start of the node
    waited that second before the programs were even spawned. A connection
    on its socket is such an event (it accepts it and sees it closed)."""
    deadline = time.monotonic() + WAKE_WITHIN_SECONDS
    while time.monotonic() < deadline:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            try:
                sock.connect(str(path))
                return
            except OSError:  # not there yet, or a stale file of an earlier run
                pass
        time.sleep(0.01)


def main() -> None:
    parent = int(sys.argv[1])
    die_with_parent(parent=parent)  # killed outright, `ksnode up` leaves no supervisord behind
    sys.argv = ["supervisord", *sys.argv[2:]]
    home = os.environ.get("KSNODE_HOME")
    if home:  # the socket of supervisord.conf's [unix_http_server]
        path = Path(home) / "run" / "supervisor.sock"
        threading.Thread(target=wake_first_loop, args=(path,), daemon=True).start()
    from supervisor.supervisord import main as supervisord

    supervisord()


if __name__ == "__main__":
    main()
