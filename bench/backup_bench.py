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
import tempfile
import time
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from services.backup_worker.pgtools import PgTools, libpq_environment  # noqa: E402
from services.backup_worker.service import BackupService  # noqa: E402
from shared.config import load_config  # noqa: E402
from shared.db import Database  # noqa: E402
from shared.migrations import run_migrations  # noqa: E402
from shared.pgserver import EmbeddedPostgres, bundled_bin_dir  # noqa: E402

# 172 pseudo-random bytes as base64 (232 chars), like a reference ciphertext.
FILL_SQL = """
INSERT INTO "2_users" (user_id, auth_type, user_auth_id)
  SELECT md5('u' || i)::uuid, 'google', 'google_' || i FROM generate_series(1, %(n)s) i;
INSERT INTO "2_wallets" (wallet_id, user_id, curve_type, public_key)
  SELECT md5('w' || i)::uuid, md5('u' || i)::uuid, 'secp256k1',
         decode('02' || md5('k' || i) || md5('l' || i), 'hex') FROM generate_series(1, %(n)s) i;
INSERT INTO "2_key_shares" (share_id, wallet_id, enc_share, status)
  SELECT md5('s' || i)::uuid, md5('w' || i)::uuid,
         convert_to(translate(encode(substring(decode(
           md5('a' || i) || md5('b' || i) || md5('c' || i) || md5('d' || i) || md5('e' || i) ||
           md5('f' || i) || md5('g' || i) || md5('h' || i) || md5('i' || i) || md5('j' || i) ||
           md5('k2' || i), 'hex') from 1 for 172), 'base64'), E'\\n', ''), 'UTF8'),
         'active' FROM generate_series(1, %(n)s) i;
"""


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
    work = Path(tempfile.mkdtemp(prefix="ksnode-backup-bench-"))
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
        db = Database(config, maxconn=2)
        with db.transaction() as cur:
            cur.execute(FILL_SQL, {"n": args.shares})
        with db.cursor() as cur:
            cur.execute("VACUUM ANALYZE")
            cur.execute(
                'SELECT count(*), pg_size_pretty(pg_database_size(current_database())) FROM "2_key_shares"'
            )
            count, size = cur.fetchone()
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
    finally:
        server.stop()
        subprocess.run(["rm", "-rf", str(work)], check=False)


if __name__ == "__main__":
    main()
