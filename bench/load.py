"""Load benchmark of a running ksnode over loopback.

    python bench/load.py --start            # start a node in a temp folder, measure, stop it
    python bench/load.py --url http://127.0.0.1:4201 --bot-token TOKEN

Each scenario runs at concurrency 1 and 8 for a fixed time and prints
requests/s, p50 and p99 latency, and the ratio to GET /status of the same
run. ab (apache2-utils) drives fixed-body requests and wrk the registrations
(a new key each time) when installed; otherwise a multiprocess Python client
does (it costs the server CPU on a small machine: install both). The node
must run with RATE_LIMIT_PER_MINUTE=0.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent))
from loaders import ab_load, in_flight, python_load, wrk_load  # noqa: E402
from nodestats import format_memory, node_memory, remove, start_measured  # noqa: E402
from telegram_login import bearer_header  # noqa: E402

# The reference node on the same machine kind (issue 4), concurrency 8.
REFERENCE = {
    "GET /status": "~2,200",
    "v1 get": "122-133",
    "v2 get secp256k1": "~63",
    "v2 get ed25519": "~63",
    "v2 get both": "~63",
    "v1 register": "~125",
    "v1 check": "-",
}
TARGETS = {
    "GET /status": ">= 2,000",
    "v1 get": ">= 1,000 (p99 <= 25 ms)",
    "v2 get secp256k1": ">= 800",
    "v2 get ed25519": ">= 800",
    "v2 get both": ">= 800",
    "v1 register": ">= 300",
    "v1 check": "-",
}


def seed(url: str, headers: dict[str, str]) -> dict[str, str]:
    keys = {
        "v1": "02" + os.urandom(32).hex(),
        "secp": "03" + os.urandom(32).hex(),
        "ed": os.urandom(32).hex(),
    }
    calls = [
        (
            "/keyshare/v1/register",
            {
                "auth_type": "telegram",
                "curve_type": "secp256k1",
                "public_key": keys["v1"],
                "share": os.urandom(64).hex(),
            },
        ),
        (
            "/keyshare/v2/register",
            {
                "auth_type": "telegram",
                "wallets": {
                    "secp256k1": {"public_key": keys["secp"], "share": os.urandom(64).hex()},
                    "ed25519": {"public_key": keys["ed"], "share": os.urandom(64).hex()},
                },
            },
        ),
    ]
    for path, body in calls:
        r = requests.post(url + path, json=body, headers=headers, timeout=10)
        if r.status_code != 200:
            raise SystemExit(f"seeding {path} failed: {r.status_code} {r.text}")
    return keys


def scenarios(keys: dict[str, str], user: str) -> list[dict]:
    def post(name, path, body, *, auth=True, register=False):
        return {
            "name": name,
            "method": "POST",
            "path": path,
            "body": json.dumps(body),
            "auth": auth,
            "register": register,
        }

    return [
        {
            "name": "GET /status",
            "method": "GET",
            "path": "/status",
            "body": None,
            "auth": False,
            "register": False,
        },
        post("v1 get", "/keyshare/v1/", {"auth_type": "telegram", "public_key": keys["v1"]}),
        post(
            "v2 get secp256k1",
            "/keyshare/v2/",
            {"auth_type": "telegram", "wallets": {"secp256k1": keys["secp"]}},
        ),
        post(
            "v2 get ed25519",
            "/keyshare/v2/",
            {"auth_type": "telegram", "wallets": {"ed25519": keys["ed"]}},
        ),
        post(
            "v2 get both",
            "/keyshare/v2/",
            {
                "auth_type": "telegram",
                "wallets": {"secp256k1": keys["secp"], "ed25519": keys["ed"]},
            },
        ),
        post("v1 register", "/keyshare/v1/register", {}, register=True),
        post(
            "v1 check",
            "/keyshare/v1/check",
            {
                "auth_type": "telegram",
                "user_auth_id": f"telegram_{user}",
                "curve_type": "secp256k1",
                "public_key": keys["v1"],
            },
            auth=False,
        ),
    ]


def loader_for(choice: str, scenario: dict):
    """The load generator for ``scenario``: ab cannot vary the body per request."""
    fallback = "wrk" if shutil.which("wrk") else "python"
    if scenario["register"] and choice in ("auto", "ab"):
        choice = fallback
    elif choice == "auto":
        choice = "ab" if shutil.which("ab") else fallback
    return {"ab": ab_load, "wrk": wrk_load, "python": python_load}[choice]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--url", help="a running node (else use --start)")
    parser.add_argument("--start", action="store_true", help="start a node in a temporary folder")
    parser.add_argument(
        "--bot-token", default="123456:BENCH-bot-token", help="the node's TELEGRAM_BOT_TOKEN"
    )
    parser.add_argument(
        "--duration", type=float, default=8.0, help="seconds per scenario and concurrency"
    )
    parser.add_argument("--concurrency", default="1,8")
    parser.add_argument(
        "--tool",
        choices=["auto", "ab", "wrk", "python"],
        default="auto",
        help="auto: ab for fixed bodies, wrk for registrations, else Python",
    )
    args = parser.parse_args()
    if not args.url and not args.start:
        parser.error("give --url or --start")
    node, fresh_s, warm_s = None, None, None
    url = args.url
    if args.start:
        node, fresh_s, warm_s = start_measured(args.bot_token)
        url = node.url
    try:
        user = str(int(time.time() * 1000))
        headers = {"Authorization": bearer_header(user, args.bot_token)}
        keys = seed(url, headers)
        memory_before = node_memory(node.process.pid, node.home) if node else None
        # Warm-up, unmeasured: every worker opens its pool connections and
        # prepares its statements once; the figures are for a running node.
        for scenario in scenarios(keys, user)[1:5]:
            loader_for(args.tool, scenario)(url, scenario, headers, 8, 2)
        results = []
        for concurrency in [int(c) for c in args.concurrency.split(",")]:
            for scenario in scenarios(keys, user):
                run = loader_for(args.tool, scenario)
                stats = run(
                    url, scenario, headers if scenario["auth"] else {}, concurrency, args.duration
                )
                results.append((concurrency, scenario["name"], stats))
                print(
                    f"  c={concurrency:<2} {scenario['name']:<18} {stats['rps']:8.0f} req/s  "
                    f"p50 {stats['p50_ms']:6.2f} ms  p99 {stats['p99_ms']:6.2f} ms  errors {stats['errors']}",
                    flush=True,
                )
        memory_after = node_memory(node.process.pid, node.home) if node else None
    finally:
        if node is not None:
            remove(node)
    print(f"\n{args.duration:.0f} s per scenario; cores: {os.cpu_count()}")
    print(
        f"{'conc':>4}  {'scenario':<18}{'req/s':>9}{'p50 ms':>9}{'p99 ms':>9}{'vs /status':>11}"
        f"  {'tool':<6}  {'reference c=8':>14}  target"
    )
    flagged = False
    for concurrency in sorted({c for c, _, _ in results}):
        status_rps = next(
            s["rps"] for c, n, s in results if c == concurrency and n == "GET /status"
        )
        for c, name, stats in results:
            if c != concurrency:
                continue
            # Little's law: more requests in flight than connections means the
            # tool's latencies are wrong (seen with wrk on small VMs).
            suspect = in_flight(stats) > 1.2 * c
            flagged = flagged or suspect
            print(
                f"{c:>4}  {name:<18}{stats['rps']:9.0f}{stats['p50_ms']:9.2f}{stats['p99_ms']:9.2f}"
                f"{'*' if suspect else ' '}{stats['rps'] / status_rps:9.2f}x  {stats['tool']:<6}  "
                f"{REFERENCE[name] if c == 8 else '':>14}  {TARGETS[name] if c == 8 else ''}"
            )
    if flagged:
        print(
            "\n* latency figures contradict the request rate (mean latency x req/s > connections); "
            "the load tool mis-measured them"
        )
    if memory_before is not None and memory_after is not None:
        print(f"\nmemory before load: {format_memory(memory_before)}")
        print(f"memory after load:  {format_memory(memory_after)}")
    summary(results, memory_after, fresh_s, warm_s)


def summary(
    results: list, memory: dict | None, fresh_s: float | None, warm_s: float | None
) -> None:
    """The figures of issue 28's table, from this run (c=8)."""
    at8 = {name: stats for c, name, stats in results if c == 8}
    if "GET /status" not in at8:
        return
    status = at8["GET /status"]["rps"]

    def ratio(name: str) -> str:
        return f"{at8[name]['rps'] / status:.2f}" if name in at8 else "-"

    v2 = [
        at8[n]["rps"] / status
        for n in ("v2 get secp256k1", "v2 get ed25519", "v2 get both")
        if n in at8
    ]
    print("\nissue 28 figures (c=8)                      this run     goal")
    print(f"  v1 get / status                            {ratio('v1 get'):>8}   >= 0.60")
    print(f"  v2 get / status (secp, ed, both)  {' '.join(f'{r:.2f}' for r in v2):>17}   >= 0.55")
    print(f"  v1 register / status                       {ratio('v1 register'):>8}   >= 0.35")
    if "v1 get" in at8:
        print(
            f"  v1 get p99                             {at8['v1 get']['p99_ms']:9.1f} ms  <= 12 ms"
        )
    if memory is not None:
        node_kib = sum(kib for role, (_, kib) in memory.items() if role != "postgres")
        print(f"  node PSS after load (no Postgres)      {node_kib / 1024:8.1f} MiB  < 150 MB")
    if warm_s is not None and fresh_s is not None:
        print(f"  ksnode up -> first 200 /status, warm   {warm_s:9.2f} s   <= 2 s")
        print(f"  ksnode up -> first 200 /status, fresh  {fresh_s:9.2f} s   <= 3 s")


if __name__ == "__main__":
    main()
