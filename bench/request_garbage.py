"""What garbage a request leaves for the cycle collector, and what the API
worker's young-generation threshold costs (services/api/server/program.py).

    python bench/request_garbage.py
    python bench/request_garbage.py --requests 3000 --rounds 6

In process: the production WSGI stack (create_app behind the gate) on a
real embedded Postgres, as bench/profile_routes.py builds it. It prints,
per route, the objects per request that only a collection frees (reference
cycles) and their types, then the process CPU per request with each
threshold in turn (the median over the rounds), frozen start-up objects
as in a worker. A worker carries about threshold / cycles-per-request
requests of that garbage between two collections.
"""

from __future__ import annotations

import argparse
import collections
import gc
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from profile_routes import build_scratch_app, call, seeded_v1_share, v1_get  # noqa: E402
from scratch import scratch_postgres  # noqa: E402

THRESHOLDS = (20_000, 2_000, 700)


def cycles_per_request(app, route: tuple, requests: int) -> tuple[float, collections.Counter]:
    """(objects freed only by a collection per request, their types over 10 requests)"""
    gc.collect()
    gc.disable()
    try:
        for _ in range(requests):
            call(app, *route)
        found = gc.collect()
        gc.set_debug(gc.DEBUG_SAVEALL)
        for _ in range(10):
            call(app, *route)
        gc.collect()
        kinds = collections.Counter(type(o).__qualname__ for o in gc.garbage)
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        gc.enable()
    return found / requests, kinds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=6)
    args = parser.parse_args()
    with scratch_postgres("ksnode-garbage-") as (work, pg):
        app = build_scratch_app(work, pg)
        _user, auth, key = seeded_v1_share(app)
        routes = {
            "GET /status": ("GET", "/status", b"", {}),
            "v1 get": v1_get(key, auth),
            "v1 get, malformed body": ("POST", "/keyshare/v1", b"{bad", auth),
        }
        for route in routes.values():  # warm: caches filled, pool connected
            for _ in range(200):
                call(app, *route)

        print(f"{'route':<24}{'cyclic objects/request':>24}  types (over 10 requests)")
        for name, route in routes.items():
            per_request, kinds = cycles_per_request(app, route, args.requests)
            print(f"{name:<24}{per_request:24.1f}  {dict(kinds)}")

        gc.collect()
        gc.freeze()  # as a worker does after start
        cpu: dict[tuple[int, str], list[float]] = {}
        timed = {name: routes[name] for name in ("GET /status", "v1 get")}
        for _ in range(args.rounds):
            for threshold in THRESHOLDS:
                gc.set_threshold(threshold, 20, 20)
                for name, route in timed.items():
                    started = time.process_time()
                    for _ in range(args.requests):
                        call(app, *route)
                    spent = time.process_time() - started
                    cpu.setdefault((threshold, name), []).append(spent / args.requests * 1e6)
        print(f"\n{'threshold':>9}  " + "  ".join(f"{name + ' µs':>16}" for name in timed))
        for threshold in THRESHOLDS:
            figures = "  ".join(
                f"{statistics.median(cpu[(threshold, name)]):16.0f}" for name in timed
            )
            print(f"{threshold:>9}  {figures}")


if __name__ == "__main__":
    main()
