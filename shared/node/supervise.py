"""supervisord as `ksnode up` runs it: told to stop when `ksnode up` dies.

    python -m shared.node.supervise <pid of ksnode up> <supervisord arguments>

(A module rather than ``python -c "..."`` so that ``ps`` shows what runs.)
"""

from __future__ import annotations

import sys

from shared.infra.parentdeath import die_with_parent


def main() -> None:
    parent = int(sys.argv[1])
    die_with_parent(parent=parent)  # killed outright, `ksnode up` leaves no supervisord behind
    sys.argv = ["supervisord", *sys.argv[2:]]
    from supervisor.supervisord import main as supervisord

    supervisord()


if __name__ == "__main__":
    main()
