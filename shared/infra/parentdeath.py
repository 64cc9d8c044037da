"""Die with the parent process (Linux ``PR_SET_PDEATHSIG``).

The node is a tree: `ksnode up` -> supervisord -> the three programs (->
the api's workers, the backup worker's pg_dump). Were a middle process
killed outright (SIGKILL, the OOM killer), its children would live on as
orphans: programs serving without a supervisor, holding the API port so
that the next `ksnode up` cannot bind it. Each process therefore asks the
kernel for a signal when its parent dies: SIGTERM for supervisord and the
programs (they stop as on any stop: requests finish, a dump is allowed to
end), SIGKILL for the backup tools.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys

PR_SET_PDEATHSIG = 1
_LIBC = ctypes.CDLL(None, use_errno=True) if sys.platform.startswith("linux") else None
# Looked up now, not in a forked child (pgtools' preexec): dlsym after a
# fork in a threaded process may deadlock.
_PRCTL = _LIBC.prctl if _LIBC is not None else None


def die_with_parent(sig: int = signal.SIGTERM, parent: int | None = None) -> bool:
    """Have ``sig`` sent to this process when its parent dies. ``parent``: the
    pid the parent had (default: the current one); if it is already gone,
    ``sig`` is sent now. False where the system cannot do it."""
    expected = os.getppid() if parent is None else parent
    if _PRCTL is None:
        return False
    if _PRCTL(PR_SET_PDEATHSIG, int(sig), 0, 0, 0) != 0:
        return False
    if os.getppid() != expected:  # it died before prctl took effect
        os.kill(os.getpid(), sig)
    return True
