"""v1 get throughput with the audit trail on and off, in one run.

    python bench/audit_bench.py [--rounds 4] [--duration 8] [--concurrency 8] [--tool auto]

Starts a temporary embedded Postgres and two API programs on the same
database, one with ``AUDIT_ENABLED=true`` and one with ``false`` (same
workers, same settings otherwise), seeds one Telegram user with a v1 wallet,
then measures v1 get against each in alternating rounds (off, on, on, off,
...) so drift on a shared machine hits both alike. Prints each round, the
total of each side, the on/off ratio (target: at least 0.90), how many
records the trail holds afterwards and whether `audit verify` passes.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(ROOT))

from load import loader_for  # noqa: E402
from loaders import register_v1_share  # noqa: E402
from nodestats import free_port  # noqa: E402
from scratch import api_program_env  # noqa: E402
from telegram_login import bearer_header  # noqa: E402

from shared.audit.trail import node_key  # noqa: E402
from shared.audit.verify import verify_chain  # noqa: E402
from shared.config import load_config  # noqa: E402
from shared.db.embedded import EmbeddedPostgres  # noqa: E402
from shared.db.migrations import run_migrations  # noqa: E402
from shared.db.pool import Database  # noqa: E402
from shared.store import audit as store  # noqa: E402
from tests.support.api_program import start_api_program  # noqa: E402

BOT_TOKEN = "123456:BENCH-bot-token"


def start_api(env: dict[str, str], audit: bool) -> tuple[subprocess.Popen, str]:
    port = free_port()
    audit_enabled = "true" if audit else "false"
    program = start_api_program(
        {**env, "PORT": str(port), "AUDIT_ENABLED": audit_enabled}, timeout=60
    )
    return program, f"http://127.0.0.1:{port}"


def cpu_seconds(pid: int) -> float:
    """User + system CPU of ``pid`` and its children (the API workers, or
    Postgres's backends)."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0.0
    pids = [pid]
    try:
        pids += [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        pass
    for one in pids:
        try:
            fields = Path(f"/proc/{one}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / ticks
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=4, help="measurements per side")
    parser.add_argument("--duration", type=float, default=8.0, help="seconds per measurement")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--tool", choices=["auto", "ab", "wrk", "python"], default="auto")
    parser.add_argument(
        "--route",
        choices=["get", "register"],
        default="get",
        help="v1 get (the target) or v1 register (a record committed before each answer)",
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="ksnode-audit-bench-") as tmp:
        root = Path(tmp)
        os.chmod(root, 0o755)  # the embedded Postgres may run as another user
        server = EmbeddedPostgres(root / "pg" / "pg_data")
        running = server.start()
        programs: list[subprocess.Popen] = []
        try:
            server.create_database("bench")
            env = api_program_env(root, running, "bench", BOT_TOKEN, drop=("AUDIT_",))
            config = load_config(env)
            run_migrations(config)
            off, off_url = start_api(env, audit=False)
            on, on_url = start_api(env, audit=True)
            programs += [off, on]
            user = str(int(time.time() * 1000))
            headers = {"Authorization": bearer_header(user, BOT_TOKEN)}
            body = register_v1_share(on_url, headers)
            scenario = {
                "name": f"v1 {args.route}",
                "method": "POST",
                "path": "/keyshare/v1/" if args.route == "get" else "/keyshare/v1/register",
                "body": json.dumps(body),
                "auth": True,
                "register": args.route == "register",
            }
            load = loader_for(args.tool, scenario)
            for url in (off_url, on_url):  # warm-up: pools, prepared statements
                load(url, scenario, headers, args.concurrency, 2)
            totals = {"off": [0.0, 0.0], "on": [0.0, 0.0]}  # requests, seconds
            cpu = {"off": [0.0, 0.0], "on": [0.0, 0.0]}  # api CPU s, postgres CPU s
            postmaster = int((root / "pg" / "pg_data" / "postmaster.pid").read_text().split()[0])
            print(
                f"v1 {args.route}, concurrency {args.concurrency}, {args.duration:.0f} s per round"
            )
            for i in range(args.rounds * 2):
                side = ("off", "on", "on", "off")[i % 4]
                program = off if side == "off" else on
                api_cpu, pg_cpu = cpu_seconds(program.pid), cpu_seconds(postmaster)
                stats = load(
                    off_url if side == "off" else on_url,
                    scenario,
                    headers,
                    args.concurrency,
                    args.duration,
                )
                cpu[side][0] += cpu_seconds(program.pid) - api_cpu
                cpu[side][1] += cpu_seconds(postmaster) - pg_cpu
                totals[side][0] += stats["rps"] * args.duration
                totals[side][1] += args.duration
                print(
                    f"  trail {side:<3} {stats['rps']:8.0f} req/s  p50 {stats['p50_ms']:6.2f} ms  "
                    f"p99 {stats['p99_ms']:6.2f} ms  errors {stats['errors']}  ({stats['tool']})",
                    flush=True,
                )
            rps = {side: n / s for side, (n, s) in totals.items()}
            time.sleep(1.5)  # let the last batch of read records commit
            db = Database(config, maxconn=2)
            with db.cursor() as cur:
                records = store.count(cur)
            with db.connection() as conn:
                report = verify_chain(node_key(config), store.scan(conn))
            db.close()
        finally:
            for program in programs:
                program.send_signal(signal.SIGTERM)
                program.wait(30)
            server.stop()
    print(
        f"\ntrail off {rps['off']:.0f} req/s, trail on {rps['on']:.0f} req/s: "
        f"on/off = {rps['on'] / rps['off']:.3f} (target >= 0.90)"
    )
    for side in ("off", "on"):
        n = totals[side][0]
        print(
            f"CPU per request, trail {side:<3}: api {cpu[side][0] / n * 1e6:5.0f} us, "
            f"postgres {cpu[side][1] / n * 1e6:5.0f} us, "
            f"together {(cpu[side][0] + cpu[side][1]) / n * 1e6:5.0f} us"
        )
    both = {side: (cpu[side][0] + cpu[side][1]) / totals[side][0] for side in cpu}
    print(
        f"CPU-bound on/off (what an idle machine's throughput ratio follows): "
        f"{both['off'] / both['on']:.3f}"
    )
    print(f"audit records: {records}; audit verify: {'intact' if report.ok else report.problems}")
    print(
        f"cores: {os.cpu_count()}; load average: {os.getloadavg()[0]:.2f} (other work skews figures)"
    )


if __name__ == "__main__":
    main()
