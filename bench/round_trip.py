"""What one database round trip costs the API inside a request, measured
in-process (no HTTP server): the production WSGI stack (create_app behind
the gate, as bench/profile_routes.py builds it) against a real embedded
Postgres, CPU of this process per request.

    python bench/round_trip.py               # 5 sets of 4,000 requests per line
    python bench/round_trip.py --requests 8000 --sets 7

For /keyshare/v1/check and /keyshare/v1 (get) it prints the CPU per request

* as served (one prepared statement per request, its answer from Postgres);
* with that statement's answer canned (the first answer kept and returned
  again; the pool checkout stays), i.e. the request without the round trip;
* canned plus a bare ``SELECT 1`` on the same connection: a round trip
  that does no work of its own;
* the statement alone in a tight loop (pool checkout, execute, fetch).

The route's own Python is "canned"; what the round trip adds is "served"
minus "canned". Compare it with the tight loop: the same statement costs
several times more CPU inside a request than alone, because the thread
sleeps while Postgres answers and finds its caches cold when it wakes.
That cost is per round trip, not per line of our code, and it is what
keeps a share route's ratio to /status (which makes none) where it is.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from profile_routes import build_scratch_app, call, seeded_v1_share, v1_get  # noqa: E402
from scratch import scratch_postgres  # noqa: E402


def cpu_per_call(work: Callable[[], object], requests: int, sets: int) -> tuple[float, float]:
    """(median, lowest) µs of process CPU per call over ``sets`` sets."""
    for _ in range(300):  # warm-up: prepared statements, caches
        work()
    per_set = []
    for _ in range(sets):
        started = time.process_time()
        for _ in range(requests):
            work()
        per_set.append((time.process_time() - started) / requests * 1e6)
    return statistics.median(per_set), min(per_set)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=4000)
    parser.add_argument("--sets", type=int, default=5)
    args = parser.parse_args()
    with scratch_postgres("ksnode-round-trip-") as (work, pg):
        app = build_scratch_app(work, pg)
        from shared.store import shares

        ctx = app.app.extensions["ksnode"]
        user, auth, key = seeded_v1_share(app)
        check_body = {
            "auth_type": "telegram",
            "user_auth_id": f"telegram_{user}",
            "public_key": key,
        }
        routes = {
            "GET /status": ("GET", "/status", b"", {}),
            "v1 check": ("POST", "/keyshare/v1/check", json.dumps(check_body).encode(), {}),
            "v1 get": v1_get(key, auth),
        }

        def request(name: str) -> Callable[[], object]:
            def one() -> object:
                status, out = call(app, *routes[name])
                if not status.startswith("200"):
                    raise SystemExit(f"{name}: {status} {out!r}")
                return out

            return one

        def line(label: str, work: Callable[[], object]) -> None:
            median, lowest = cpu_per_call(work, args.requests, args.sets)
            print(f"  {label:<40} {median:7.0f} {lowest:7.0f}", flush=True)

        print(f"  {'µs of CPU per request':<40} {'median':>7} {'lowest':>7}")
        line("GET /status (no statement)", request("GET /status"))
        for name in ("v1 check", "v1 get"):
            line(f"{name}, served", request(name))

        # The statements' answers canned: each distinct call is answered by
        # Postgres once, then from memory.
        real = {"lookup": shares.lookup, "lookup_guarded": shares.lookup_guarded}
        answers: dict[tuple, object] = {}

        def canned(which: str):
            def answer(cur, *params):
                known = (which, *(tuple(p) if isinstance(p, list) else p for p in params))
                if known not in answers:
                    answers[known] = real[which](cur, *params)
                return answers[known]

            return answer

        shares.lookup, shares.lookup_guarded = canned("lookup"), canned("lookup_guarded")
        for name in ("v1 check", "v1 get"):
            line(f"{name}, statement canned", request(name))

        served_cursor = ctx.db.cursor

        @contextlib.contextmanager
        def cursor_after_select_1(*a, **kw):
            with served_cursor(*a, **kw) as cur:
                cur.execute("SELECT 1")
                cur.fetchall()
                yield cur

        ctx.db.cursor = cursor_after_select_1
        for name in ("v1 check", "v1 get"):
            line(f"{name}, canned + SELECT 1", request(name))
        ctx.db.cursor = served_cursor
        shares.lookup, shares.lookup_guarded = real["lookup"], real["lookup_guarded"]

        owner = ("telegram", f"telegram_{user}")
        public_key = bytes.fromhex(key)

        def statement_alone() -> object:
            with ctx.db.cursor() as cur:
                return shares.lookup(cur, *owner, [public_key])

        def select_1_alone() -> object:
            with ctx.db.cursor() as cur:
                cur.execute("SELECT 1")
                return cur.fetchall()

        line("the lookup alone, tight loop", statement_alone)
        line("SELECT 1 alone, tight loop", select_1_alone)


if __name__ == "__main__":
    main()
