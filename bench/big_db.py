"""Lookups at scale: v1 get and v1 register on an empty database, then on
one with --rows users, wallets and key shares (default 10,000,000), built
with COPY (not the API). Run by hand; it prints the build time, the
database size and the figures.

    python bench/big_db.py [--rows 10000000] [--duration 8] [--concurrency 8]

A temporary embedded Postgres holds both databases; the API program
(``python -m services.api``, 2 workers) runs on each in turn, so the
backup worker's first dump of millions of rows does not share the cores.
The filler rows are the reference's shape (a user, a secp256k1 wallet with
a spread-out public key, a share sealed to its owner); only the
benchmark's own share, registered through the API, is ever decrypted.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from loaders import ab_load, register_v1_share, wrk_load  # noqa: E402
from nodestats import free_port  # noqa: E402
from scratch import scratch_postgres  # noqa: E402
from telegram_login import bearer_header  # noqa: E402

from shared.config import load_config  # noqa: E402
from shared.crypto.binding import share_binding  # noqa: E402
from shared.crypto.sealing import Cipher  # noqa: E402
from shared.db.migrations import run_migrations  # noqa: E402
from shared.db.pool import connect  # noqa: E402
from shared.store.shares import GUARDED_LOOKUP_SQL  # noqa: E402
from tests.conftest import create_database  # noqa: E402

BOT_TOKEN = "123456:BENCH-bot-token"
# Odd, so i -> i * SPREAD mod 2**256 is one-to-one: unique keys, spread over
# the index like real ones instead of appended in order.
SPREAD = 0x9E3779B97F4A7C15F39CC0605CEDC8341082276BF3A27251F86C6A11D0C18E95
MASK = (1 << 256) - 1
SHARE = "ab" * 64  # every filler share: 64 bytes, as hex
CHUNK = 50_000
# Built without their unique indexes (COPY is then several times faster),
# which are made afterwards under their reference names.
CONSTRAINTS = [
    ('"2_users"', '"2_users_pkey"', "PRIMARY KEY (user_id)"),
    ('"2_users"', '"2_users_auth_type_user_auth_id_key"', "UNIQUE (auth_type, user_auth_id)"),
    ('"2_wallets"', '"2_wallets_pkey"', "PRIMARY KEY (wallet_id)"),
    ('"2_wallets"', '"2_wallets_public_key_key"', "UNIQUE (public_key)"),
    ('"2_key_shares"', '"2_key_shares_pkey"', "PRIMARY KEY (share_id)"),
    ('"2_key_shares"', '"2_key_shares_unique"', "UNIQUE (wallet_id)"),
]


def uid(kind: int, i: int) -> str:
    return f"{kind:08x}-0000-4000-8000-{i:012x}"


def public_key(i: int) -> bytes:
    return b"\x02" + (((i + 1) * SPREAD) & MASK).to_bytes(32, "big")


def rows(kind: str, n: int, cipher: Cipher) -> Iterator[str]:
    """COPY text of ``n`` rows of one table, in chunks. Shares are really
    sealed (ksn3, to their owner): the API refuses to start on a database
    whose shares its secret does not open, and any of them may be read."""
    for start in range(0, n, CHUNK):
        lines = []
        for i in range(start, min(n, start + CHUNK)):
            if kind == "users":
                lines.append(f"{uid(1, i)}\tgoogle\tgoogle_{i}\n")
            elif kind == "wallets":
                lines.append(f"{uid(2, i)}\t{uid(1, i)}\tsecp256k1\t\\\\x{public_key(i).hex()}\n")
            else:
                wallet = uid(2, i)
                binding = share_binding(wallet, "google", f"google_{i}", "secp256k1", public_key(i))
                sealed = cipher.seal(SHARE, binding)
                lines.append(f"{uid(3, i)}\t{wallet}\t{sealed}\tactive\n")
        yield "".join(lines)


class ChunkReader(io.TextIOBase):
    """A file-like view of an iterator of strings, for copy_expert."""

    def __init__(self, chunks: Iterator[str]):
        self.chunks, self.buffer = chunks, ""

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> str:
        while size < 0 or len(self.buffer) < size:
            try:
                self.buffer += next(self.chunks)
            except StopIteration:
                break
        if size < 0:
            size = len(self.buffer)
        out, self.buffer = self.buffer[:size], self.buffer[size:]
        return out

    readline = read


def build(conn, n: int, cipher: Cipher) -> None:
    columns = {
        "users": '"2_users" (user_id, auth_type, user_auth_id)',
        "wallets": '"2_wallets" (wallet_id, user_id, curve_type, public_key)',
        "shares": '"2_key_shares" (share_id, wallet_id, enc_share, status)',
    }
    with conn.cursor() as cur:
        for table, name, _ in CONSTRAINTS:
            cur.execute(f"ALTER TABLE {table} DROP CONSTRAINT {name}")
        for kind, target in columns.items():
            started = time.perf_counter()
            cur.copy_expert(
                f"COPY {target} FROM STDIN", ChunkReader(rows(kind, n, cipher)), size=1 << 20
            )
            print(f"  COPY {kind}: {time.perf_counter() - started:.0f} s", flush=True)
        started = time.perf_counter()
        for table, name, definition in CONSTRAINTS:
            cur.execute(f"ALTER TABLE {table} ADD CONSTRAINT {name} {definition}")
        print(f"  indexes: {time.perf_counter() - started:.0f} s", flush=True)
        cur.execute("VACUUM ANALYZE")


def explain(conn, n: int) -> None:
    """EXPLAIN ANALYZE of the share lookup a v1 get runs (the committed-token
    check in it), for a key in the middle of the table: index scans only."""
    with conn.cursor() as cur:
        cur.execute(f"PREPARE lookup AS {GUARDED_LOOKUP_SQL}")
        cur.execute("SET plan_cache_mode = force_generic_plan")  # as a long-lived worker's
        cur.execute(
            "EXPLAIN (ANALYZE, COSTS OFF, TIMING ON) EXECUTE lookup (%s, %s, %s, %s)",
            ("google", f"google_{n // 2}", [public_key(n // 2)], "00" * 32),
        )
        print("\n".join(row[0] for row in cur.fetchall()))


def start_api(env: dict[str, str], log: Path) -> tuple[subprocess.Popen, str]:
    """The api program, its output in ``log`` (read it when it fails)."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with log.open("a") as out:
        program = subprocess.Popen(
            [sys.executable, "-m", "services.api"],
            env={**env, "PORT": str(port), "HOST": "127.0.0.1", "API_WORKERS": "2"},
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
        )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and program.poll() is None:
        try:
            if requests.get(url + "/status", timeout=1).status_code == 200:
                return program, url
        except requests.RequestException:
            pass
        time.sleep(0.2)
    program.kill()
    raise SystemExit(f"the api program did not start:\n{log.read_text()[-2000:]}")


def measure(env: dict[str, str], duration: float, concurrency: int, log: Path) -> dict[str, dict]:
    program, url = start_api(env, log)
    try:
        headers = {"Authorization": bearer_header(str(int(time.time() * 1000)), BOT_TOKEN)}
        body = register_v1_share(url, headers)
        get = {
            "name": "v1 get",
            "method": "POST",
            "path": "/keyshare/v1/",
            "body": json.dumps(body),
            "register": False,
        }
        register = {**get, "name": "v1 register", "path": "/keyshare/v1/register"}
        register["register"] = True
        ab_load(url, get, headers, concurrency, 2)  # warm-up: pools, prepared statements
        return {
            "v1 get": ab_load(url, get, headers, concurrency, duration),
            "v1 register": wrk_load(url, register, headers, concurrency, duration),
        }
    finally:
        program.terminate()
        program.wait(30)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--duration", type=float, default=8.0)
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()
    with scratch_postgres("ksnode-bigdb-") as (work, pg):
        (work / "secret").write_text("bench-secret")
        (work / "home").mkdir()

        def env_for(dbname: str) -> dict[str, str]:
            return {
                "PATH": os.environ.get("PATH", ""),
                "DB_HOST": pg.host,
                "DB_PORT": str(pg.port),
                "DB_PASSWORD": pg.password,
                "DB_NAME": dbname,
                "KSNODE_HOME": str(work / "home"),
                "LOG_LEVEL": "warning",
                "RATE_LIMIT_PER_MINUTE": "0",
                "TELEGRAM_BOT_TOKEN": BOT_TOKEN,
                "ENCRYPTION_SECRET_PATH": str(work / "secret"),
            }

        figures = {}
        for dbname, n in (("empty", 0), ("big", args.rows)):
            create_database(pg, dbname)
            config = load_config(env_for(dbname))
            run_migrations(config)
            if n:
                print(f"building {n:,} users, wallets and key shares with COPY ...", flush=True)
                started = time.perf_counter()
                conn = connect(config, autocommit=True)
                try:
                    build(conn, n, Cipher("bench-secret"))
                    with conn.cursor() as cur:
                        cur.execute("SELECT pg_size_pretty(pg_database_size(current_database()))")
                        size = cur.fetchone()[0]
                    explain(conn, n)
                finally:
                    conn.close()
                print(f"built in {time.perf_counter() - started:.0f} s; database size {size}")
            figures[dbname] = measure(
                env_for(dbname), args.duration, args.concurrency, work / "api.log"
            )
    print(f"\nc={args.concurrency}, {args.duration:.0f} s each; {args.rows:,} rows in the big one")
    print(
        f"{'route':<14}{'empty req/s':>12}{'big req/s':>11}{'ratio':>7}{'p99 empty':>11}{'p99 big':>9}"
    )
    for route in ("v1 get", "v1 register"):
        empty, big = figures["empty"][route], figures["big"][route]
        print(
            f"{route:<14}{empty['rps']:12.0f}{big['rps']:11.0f}{big['rps'] / empty['rps']:7.2f}"
            f"{empty['p99_ms']:9.1f}ms{big['p99_ms']:7.1f}ms"
        )


if __name__ == "__main__":
    main()
