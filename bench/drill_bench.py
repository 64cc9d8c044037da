"""Restore-drill benchmark: a database with 100,000 key shares (the same
data as backup_bench.py); how long a restore drill takes (SHA-256 of the
file, pg_restore into a scratch database, row counts and checksums of the
key tables, drop), and what recording those checksums costs a backup.

    python bench/drill_bench.py [--shares 100000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.scratch import filled_database, scratch_postgres  # noqa: E402
from shared.backup.dump import dump_database  # noqa: E402
from shared.backup.pgtools import PgTools  # noqa: E402
from shared.backup.service import BackupService  # noqa: E402
from shared.db.embedded import bundled_bin_dir  # noqa: E402
from shared.store import contents  # noqa: E402


def timed(fn) -> tuple[float, object]:
    started = time.perf_counter()
    value = fn()
    return time.perf_counter() - started, value


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--shares", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with scratch_postgres("ksnode-drill-bench-") as (work, running):
        config, db, count, size = filled_database(work, running, args.shares, maxconn=3)
        bins = bundled_bin_dir()
        tools = PgTools(str(bins / "pg_dump"), str(bins / "pg_restore"), 18)
        service = BackupService(config, db, tools)
        print(f"database: {count} key shares, {size}; {args.rounds} rounds each\n")
        results: dict[str, list[float]] = {}
        for _ in range(args.rounds):
            with db.transaction() as cur:
                seconds, _ = timed(lambda c=cur: contents.summarize(c))
            results.setdefault("checksums of the key tables alone", []).append(seconds)
            seconds, _ = timed(
                lambda: dump_database(config, tools, work / "plain", name="plain.dump")
            )
            results.setdefault("verified dump without checksums", []).append(seconds)
            seconds, _ = timed(service.backup_now)
            results.setdefault("ksnode backup (checksums recorded)", []).append(seconds)
            seconds, outcome = timed(service.drill_now)
            assert outcome["ok"], outcome
            results.setdefault("restore drill (whole)", []).append(seconds)
        print(f"{'':40}{'median s':>10}{'min s':>8}{'max s':>8}")
        for name, values in results.items():
            print(f"{name:40}{statistics.median(values):10.2f}{min(values):8.2f}{max(values):8.2f}")
        db.close()


if __name__ == "__main__":
    main()
