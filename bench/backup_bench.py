"""Backup benchmark: a database with 100,000 key shares; our full backup
(pg_dump + fsync + complete verification read + sha256 + rename + bookkeeping)
against a bare `pg_dump -Fc` of the same database, in the same run; and the
size/time of compression levels 0, 1 and 6 (why BACKUP_COMPRESSION defaults to 0).

    python bench/backup_bench.py [--shares 100000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.scratch import filled_database, scratch_postgres  # noqa: E402
from shared.backup.pgtools import PgTools, libpq_environment  # noqa: E402
from shared.backup.service import BackupService  # noqa: E402
from shared.db.embedded import bundled_bin_dir  # noqa: E402


def timed(fn) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--shares", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--levels", default="0,1,6", help="pg_dump --compress levels to compare")
    args = parser.parse_args()
    with scratch_postgres("ksnode-backup-bench-") as (work, running):
        config, db, count, size = filled_database(work, running, args.shares, maxconn=2)
        bins = bundled_bin_dir()
        tools = PgTools(str(bins / "pg_dump"), str(bins / "pg_restore"), 18)
        env = libpq_environment(config)
        print(
            f"database: {count} key shares, {size}; pg_dump {tools.major}; {args.rounds} rounds each\n"
        )
        results: dict[str, list[float]] = {}
        sizes: dict[str, int] = {}
        levels = [int(v) for v in args.levels.split(",")]
        for level in levels:
            service = BackupService(replace(config, backup_compression=level), db, tools)
            bare_file = work / f"bare_{level}.dump"
            bare_command = [tools.pg_dump, "-Fc", f"-Z{level}", "-f", str(bare_file), "bench"]
            for _ in range(args.rounds):
                results.setdefault(f"bare pg_dump -Fc -Z{level}", []).append(
                    timed(lambda command=bare_command: subprocess.run(command, env=env, check=True))
                )
                sizes[f"bare pg_dump -Fc -Z{level}"] = bare_file.stat().st_size
                outcome: dict = {}
                results.setdefault(f"ksnode backup -Z{level}", []).append(
                    timed(lambda s=service, into=outcome: into.update(s.backup_now()))
                )
                sizes[f"ksnode backup -Z{level}"] = outcome["dumpSize"]
            read_command = [tools.pg_restore, "-f", "/dev/null", str(bare_file)]
            verify = timed(
                lambda command=read_command: subprocess.run(command, env=env, check=True)
            )
            results.setdefault(f"verification read alone -Z{level}", []).append(verify)
        print(f"{'':34}{'median s':>10}{'size MiB':>10}")
        for name, values in results.items():
            size_text = f"{sizes[name] / 2**20:10.1f}" if name in sizes else ""
            print(f"{name:34}{statistics.median(values):10.3f}{size_text}")
        for level in levels:
            ours = statistics.median(results[f"ksnode backup -Z{level}"])
            bare = statistics.median(results[f"bare pg_dump -Fc -Z{level}"])
            check = statistics.median(results[f"verification read alone -Z{level}"])
            print(
                f"\n-Z{level}: ksnode / (bare pg_dump + verification read) = {ours / (bare + check):.3f}"
                f"   (target <= 1.05); ksnode / bare pg_dump = {ours / bare:.2f}"
            )
        db.close()


if __name__ == "__main__":
    main()
