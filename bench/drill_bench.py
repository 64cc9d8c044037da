"""Restore-drill benchmark: a database with 100,000 key shares (the same
data as backup_bench.py); how long a restore drill takes (SHA-256 of the
file, pg_restore into a scratch database, row counts and checksums of the
key tables, drop), and what recording those checksums costs a backup.

    python bench/drill_bench.py [--shares 100000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.backup_bench import FILL_SQL  # noqa: E402
from services.backup_worker.dump import dump_database  # noqa: E402
from services.backup_worker.pgtools import PgTools  # noqa: E402
from services.backup_worker.service import BackupService  # noqa: E402
from shared.config import load_config  # noqa: E402
from shared.db import Database  # noqa: E402
from shared.migrations import run_migrations  # noqa: E402
from shared.pgserver import EmbeddedPostgres, bundled_bin_dir  # noqa: E402
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
    work = Path(tempfile.mkdtemp(prefix="ksnode-drill-bench-"))
    server = EmbeddedPostgres(work / "pg_data")
    running = server.start()
    try:
        server.create_database("bench")
        (work / "secret").write_text("bench-secret")
        config = load_config(
            {
                "DB_HOST": running.host,
                "DB_PORT": str(running.port),
                "DB_NAME": "bench",
                "ENCRYPTION_SECRET_PATH": str(work / "secret"),
                "DUMP_DIR": str(work / "dump"),
                "BACKUP_RETENTION_DAYS": "1000",
            }
        )
        run_migrations(config)
        db = Database(config, maxconn=3)
        with db.transaction() as cur:
            cur.execute(FILL_SQL, {"n": args.shares})
        with db.cursor() as cur:
            cur.execute("VACUUM ANALYZE")
            cur.execute(
                "SELECT count(*), pg_size_pretty(pg_database_size(current_database()))"
                ' FROM "2_key_shares"'
            )
            count, size = cur.fetchone()
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
    finally:
        server.stop()
        subprocess.run(["rm", "-rf", str(work)], check=False)


if __name__ == "__main__":
    main()
