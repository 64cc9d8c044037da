"""Requests during `ksnode ctl restart api` and `ksnode reload` under load.

    python bench/restart_bench.py [--rounds 3] [--clients 8]

Starts a node (`ksnode up`, real supervisord) on a temporary embedded
Postgres, runs a steady load of GET /status (half the clients keep one
keep-alive connection, half connect per request) and, per round, runs each
command once (`restart api`, `reload`, and `reload`'s api handover alone) with the load going from one second before to two seconds
after. Prints, per command and round: requests answered, failed requests
(with reasons) and the longest answer time.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.scratch import node_db_env, scratch_postgres  # noqa: E402
from tests.support.node_process import NodeProcess  # noqa: E402
from tests.support.steady_load import SteadyLoad  # noqa: E402

COMMANDS = {
    "restart api": ("ctl", "restart", "api"),
    "reload": ("reload",),
    # the api handover of `reload` alone (it completes within the 2 s that follow)
    "api handover": ("ctl", "signal", "HUP", "api"),
}


def measure(node: NodeProcess, clients: int, args: tuple[str, ...]):
    with SteadyLoad(node.url, clients=clients) as load:
        time.sleep(1.0)
        started = time.monotonic()
        outcome = node.ksnode(*args)
        took = time.monotonic() - started
        time.sleep(2.0)
        result = load.stop()
    if outcome.returncode != 0:
        print(f"  command failed: {outcome.stdout} {outcome.stderr}")
    return result, took


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--clients", type=int, default=8)
    args = parser.parse_args()
    with scratch_postgres("ksnode-restart-bench-") as (tmp, pg):
        db_env = node_db_env(pg)
        node = NodeProcess.build(tmp / "var", db_env, LOG_LEVEL="warning").start()
        try:
            print(f"{args.clients} clients, GET /status; figures are per command run")
            print(
                f"{'command':<12} {'round':>5} {'answered':>9} {'failed':>7} {'longest':>9} {'took':>7}"
            )
            for round_no in range(1, args.rounds + 1):
                for name, command in COMMANDS.items():
                    result, took = measure(node, args.clients, command)
                    print(
                        f"{name:<12} {round_no:>5} {result.ok:>9} {result.failed:>7} "
                        f"{result.longest_seconds * 1000:>7.0f}ms {took:>6.1f}s"
                    )
                    for reason, count in result.reasons.items():
                        print(f"    {count} x {reason}")
        finally:
            node.stop()


if __name__ == "__main__":
    main()
