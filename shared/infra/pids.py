"""Is a process id in use? (signal 0: no signal is sent, only checked)"""

from __future__ import annotations

import os


def pid_alive(pid: int) -> bool:
    """True while ``pid`` exists; a process of another user counts (we may
    not signal it, but it is there)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
