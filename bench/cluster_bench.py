"""Throughput of one node versus two nodes on one database.

    python bench/cluster_bench.py [--duration 10] [--clients 8]

Starts a temporary embedded Postgres and two nodes (`ksnode up`, separate
homes, one secret) on it, then runs GET /status with STATUS_CACHE_SECONDS=0
(one database read per request) for ``--duration`` seconds: all clients on
node A, then the clients split over A and B. Prints requests/s, failures
and the longest answer. On one small machine both nodes share its cores,
so this shows the cost of a second node on one database, not the gain of
a second host.
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
from tests.support.steady_load import LoadResult, SteadyLoad  # noqa: E402


def run(urls: list[str], clients: int, duration: float) -> tuple[LoadResult, float]:
    loads = [SteadyLoad(url, clients=clients // len(urls)) for url in urls]
    started = time.monotonic()
    for load in loads:
        load.__enter__()
    time.sleep(duration)
    total = LoadResult()
    for load in loads:
        total.merge(load.stop())
    return total, time.monotonic() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--clients", type=int, default=8)
    args = parser.parse_args()
    with scratch_postgres("ksnode-cluster-bench-") as (tmp, pg):
        db_env = node_db_env(pg)
        secret = tmp / "secret.txt"
        nodes = [
            NodeProcess.build(tmp / name / "var", db_env, secret, LOG_LEVEL="warning")
            for name in ("a", "b")
        ]
        try:
            for node in nodes:
                node.start(90)
            run([nodes[0].url], args.clients, 2.0)  # warm-up: pools, prepared statements
            print(
                f"{args.clients} clients, GET /status (one database read each), {args.duration} s"
            )
            for label, urls in (
                ("one node", [nodes[0].url]),
                ("two nodes", [node.url for node in nodes]),
            ):
                result, took = run(urls, args.clients, args.duration)
                print(
                    f"{label:<10} {result.ok / took:>8.0f} req/s  failed {result.failed}"
                    f"  longest {result.longest_seconds * 1000:.0f} ms"
                )
        finally:
            for node in nodes:
                node.stop()


if __name__ == "__main__":
    main()
