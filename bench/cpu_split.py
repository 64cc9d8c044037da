"""Where each request's CPU goes, by process: the API workers, Postgres, the
rest of the node and the load generator.

    python bench/cpu_split.py             # starts a node in a temp folder
    python bench/cpu_split.py --requests 20000

On a 2-core machine a route's throughput is about 2 cores divided by the
CPU all processes spend per request, so a route's ratio to /status is the
ratio of those sums. This prints them per route (microseconds of CPU per
request, user + system, from /proc/<pid>/stat and the loader's rusage),
which says what a faster route has to cut: the API's Python, Postgres's
backend, or the hand-offs between them (system time).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from load import scenarios, seed  # noqa: E402
from loaders import ab_request, wrk_load  # noqa: E402
from nodestats import node_pids, remove, start_measured  # noqa: E402
from telegram_login import bearer_header  # noqa: E402

TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> tuple[float, float]:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0, 0.0
    return int(fields[11]) / TICK, int(fields[12]) / TICK


def snapshot(node) -> dict[int, tuple[str, float, float]]:
    pids = node_pids(node.process.pid, node.home)
    return {pid: (role, *cpu_seconds(pid)) for pid, role in pids.items()}


def machine_busy() -> tuple[float, float]:
    """(busy, total) jiffies of the whole machine."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + values[4]
    return sum(values) - idle, sum(values)


def run_ab(url: str, scenario: dict, headers: dict, count: int, concurrency: int):
    with tempfile.TemporaryDirectory() as folder:
        command = ["ab", "-k", "-q", "-c", str(concurrency), "-n", str(count), "-s", "10"]
        started = time.monotonic()
        process = subprocess.Popen(
            command + ab_request(url, scenario, headers, folder), stdout=subprocess.PIPE, text=True
        )
        _, status, usage = os.wait4(process.pid, 0)
        out = process.stdout.read()
        process.stdout.close()
        elapsed = time.monotonic() - started
    if "Non-2xx" in out or status != 0:
        raise SystemExit(f"ab failed for {scenario['name']}: {out[-400:]}")
    return elapsed, usage.ru_utime, usage.ru_stime


def run_wrk(url: str, scenario: dict, headers: dict, args) -> tuple[float, float, float, int]:
    """wrk for --seconds; (elapsed, loader user s, loader sys s, requests)."""
    before = os.times()
    started = time.monotonic()
    stats = wrk_load(url, scenario, headers, args.concurrency, args.seconds)
    elapsed = time.monotonic() - started
    after = os.times()
    count = round(stats["rps"] * args.seconds)
    if stats["errors"]:
        raise SystemExit(f"wrk saw {stats['errors']} errors for {scenario['name']}")
    return (
        elapsed,
        after.children_user - before.children_user,
        after.children_system - before.children_system,
        count,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=12000)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=6.0, help="of registrations (wrk)")
    parser.add_argument("--bot-token", default="123456:BENCH-bot-token")
    args = parser.parse_args()
    node, _, _ = start_measured(args.bot_token)
    try:
        user = str(int(time.time() * 1000))
        headers = {"Authorization": bearer_header(user, args.bot_token)}
        keys = seed(node.url, headers)
        chosen = scenarios(keys, user)
        for scenario in chosen:  # warm-up: pools, prepared statements
            if not scenario["register"]:
                run_ab(node.url, scenario, headers if scenario["auth"] else {}, 2000, 8)
        print(
            f"{'route':<18} {'req/s':>7} {'api':>6} {'postgres':>9} {'node rest':>9} "
            f"{'loader':>7} {'sum':>6}  user/sys  machine busy   (us of CPU per request)"
        )
        for scenario in chosen:
            before, busy0 = snapshot(node), machine_busy()
            if scenario["register"]:  # a new key each time: wrk, for a time
                elapsed, ab_user, ab_sys, n = run_wrk(node.url, scenario, headers, args)
            else:
                n = args.requests
                elapsed, ab_user, ab_sys = run_ab(
                    node.url,
                    scenario,
                    headers if scenario["auth"] else {},
                    n,
                    args.concurrency,
                )
            after, busy1 = snapshot(node), machine_busy()
            per: dict[str, float] = {}
            user_total = sys_total = 0.0
            for pid, (role, user_s, sys_s) in after.items():
                _, user0, sys0 = before.get(pid, (role, 0.0, 0.0))
                du, ds = user_s - user0, sys_s - sys0
                user_total, sys_total = user_total + du, sys_total + ds
                key = role if role in ("api", "postgres") else "node rest"
                per[key] = per.get(key, 0.0) + du + ds
            user_total, sys_total = user_total + ab_user, sys_total + ab_sys
            us = {k: v / n * 1e6 for k, v in per.items()}
            loader = (ab_user + ab_sys) / n * 1e6
            total = sum(us.values()) + loader
            busy = (busy1[0] - busy0[0]) / max(1, busy1[1] - busy0[1])
            print(
                f"{scenario['name']:<18} {n / (args.seconds if scenario['register'] else elapsed):7.0f} {us.get('api', 0):6.0f} "
                f"{us.get('postgres', 0):9.0f} {us.get('node rest', 0):9.0f} {loader:7.0f} "
                f"{total:6.0f}  {user_total / max(1e-9, user_total + sys_total):4.0%} user "
                f"{busy:6.0%}",
                flush=True,
            )
    finally:
        remove(node)


if __name__ == "__main__":
    main()
