"""Reencrypt benchmark: rows per second of `ksnode reencrypt` on legacy
(reference) shares and on ksn1 shares, and the API's v1 get throughput while
a reencrypt runs, as a ratio to without.

    python bench/reencrypt_bench.py [--ksn1 100000] [--legacy 100000] [--jobs 1]
        [--duration 15] [--concurrency 8] [--max-rates 0,1000] [--rounds 3]

Everything runs in a temporary embedded Postgres. The shares are written
under an old secret; the runs rotate to a new one (old secret previous), as
an operator does. A legacy share costs one PBKDF2 (100,000 iterations) to
write and another to read, so 100,000 legacy shares take about an hour of
CPU to prepare and another to reencrypt on this kind of VM: pass a smaller
--legacy for a quicker figure (the rate does not depend on the count).
The v1 get samples alternate with and without the reencrypt (paused by
SIGSTOP), so that both see the same background load.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import io
import json
import multiprocessing
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from loaders import python_load, register_v1_share  # noqa: E402
from telegram_login import bearer_header  # noqa: E402

from shared.config import load_config  # noqa: E402
from shared.db.embedded import EmbeddedPostgres  # noqa: E402
from shared.db.migrations import run_migrations  # noqa: E402
from shared.db.pool import Database  # noqa: E402
from tests.support.api_program import start_api_program  # noqa: E402

OLD = "bench old secret"
BOT_TOKEN = "123456:BENCH-bot-token"
KSNODE = [sys.executable, "-c", "from shared.cli import main; main()"]


def wallet_id(i: int) -> str:
    return str(uuid.UUID(hashlib.md5(f"w{i}".encode()).hexdigest()))


def ksn1_values(n: int) -> list[bytes]:
    key = AESGCM(hashlib.pbkdf2_hmac("sha256", OLD.encode(), b"ksnode/envelope/v1", 100_000, 32))
    out = []
    for i in range(n):
        nonce = os.urandom(12)
        aad = f'"2_key_shares".wallet_id={wallet_id(i)}'.encode()
        sealed = key.encrypt(nonce, os.urandom(64).hex().encode(), aad)
        out.append(b"ksn1." + base64.urlsafe_b64encode(nonce + sealed))
    return out


def _legacy_one(_i: int) -> bytes:
    salt, iv = os.urandom(16), os.urandom(12)
    key = hashlib.pbkdf2_hmac("sha256", OLD.encode(), salt, 100_000, 32)
    sealed = AESGCM(key).encrypt(iv, os.urandom(64).hex().encode(), None)
    return base64.b64encode(salt + iv + sealed[-16:] + sealed[:-16])


def legacy_values(n: int) -> list[bytes]:
    with multiprocessing.Pool() as pool:
        return pool.map(_legacy_one, range(n), chunksize=64)


def fill(db: Database, values: list[bytes]) -> None:
    """Users, wallets and shares with md5-derived ids, shares by COPY."""
    n = len(values)
    with db.transaction() as cur:
        cur.execute(
            "INSERT INTO \"2_users\" (user_id, auth_type, user_auth_id) SELECT md5('u' || i)::uuid,"
            " 'google', 'google_' || i FROM generate_series(0, %(n)s - 1) i;"
            ' INSERT INTO "2_wallets" (wallet_id, user_id, curve_type, public_key)'
            " SELECT md5('w' || i)::uuid, md5('u' || i)::uuid, 'secp256k1',"
            " decode('02' || md5('k' || i) || md5('l' || i), 'hex')"
            " FROM generate_series(0, %(n)s - 1) i",
            {"n": n},
        )
        rows = io.StringIO()
        for i, value in enumerate(values):
            rows.write(f"{uuid.uuid4()}\t{wallet_id(i)}\t\\\\x{value.hex()}\tactive\n")
        rows.seek(0)
        cur.copy_expert(
            'COPY "2_key_shares" (share_id, wallet_id, enc_share, status) FROM STDIN', rows
        )


def reencrypt(env: dict[str, str], jobs: int, max_rate: float = 0) -> tuple[int, float, float]:
    """(rows, wall seconds, engine rows/s from its last progress line)."""
    started = time.perf_counter()
    result = subprocess.run(
        [*KSNODE, "reencrypt", "--yes", "--no-backup", "--jobs", str(jobs)]
        + ["--max-rate", str(max_rate)],
        env=env,
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    elapsed = time.perf_counter() - started
    if result.returncode != 0:
        raise SystemExit(f"reencrypt failed: {result.stdout}\n{result.stderr}")
    rows = int(re.search(r"rewritten: (\d+)", result.stdout).group(1))
    rates = re.findall(r"([\d.]+) rows/s", result.stdout)
    return rows, elapsed, float(rates[-1]) if rates else rows / elapsed


def start_api(env: dict[str, str], port: int) -> subprocess.Popen:
    return start_api_program({**env, "PORT": str(port), "HOST": "127.0.0.1"}, timeout=60)


def v1_get_scenario(url: str, headers: dict[str, str]) -> dict:
    body = register_v1_share(url, headers)
    return {
        "name": "v1 get",
        "method": "POST",
        "path": "/keyshare/v1/",
        "body": json.dumps({"auth_type": "telegram", "public_key": body["public_key"]}),
        "register": False,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--ksn1", type=int, default=100_000)
    parser.add_argument("--legacy", type=int, default=100_000)
    parser.add_argument("--jobs", type=int, default=1, help="reencrypt --jobs for legacy rows")
    parser.add_argument("--duration", type=float, default=15.0, help="seconds per v1 get sample")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument(
        "--max-rates", default="0,1000", help="reencrypt --max-rate values to run under load"
    )
    parser.add_argument("--rounds", type=int, default=3, help="alternating sample pairs")
    args = parser.parse_args()
    max_rates = [float(x) for x in args.max_rates.split(",")]
    work = Path(tempfile.mkdtemp(prefix="ksnode-reencrypt-bench-"))
    server = EmbeddedPostgres(work / "pg_data")
    running = server.start()
    api = None
    try:
        # Secret generation g: rows go from g to g + 1 at each run.
        secrets = []
        for g in range(len(max_rates) + 3):
            secrets.append(work / f"secret{g}.txt")
            secrets[-1].write_text(OLD if g == 0 else f"bench secret {g}")

        def env_for(dbname: str, current: int) -> dict[str, str]:
            return {
                "PATH": os.environ.get("PATH", ""),
                "DB_HOST": running.host,
                "DB_PORT": str(running.port),
                "DB_PASSWORD": running.password,
                "DB_NAME": dbname,
                "KSNODE_HOME": str(work / "home"),
                "LOG_LEVEL": "warning",
                "RATE_LIMIT_PER_MINUTE": "0",
                "TELEGRAM_BOT_TOKEN": BOT_TOKEN,
                "ENCRYPTION_SECRET_PATH": str(secrets[current]),
                "ENCRYPTION_SECRET_PREVIOUS_PATHS": str(secrets[current - 1]) if current else "",
            }

        def database(dbname: str, values: list[bytes]) -> None:
            server.create_database(dbname)
            config = load_config(env_for(dbname, 0))
            run_migrations(config)
            db = Database(config, maxconn=1)
            fill(db, values)
            db.close()

        print(f"preparing {args.ksn1} ksn1 and {args.legacy} legacy shares ...", flush=True)
        started = time.perf_counter()
        database("ksn1", ksn1_values(args.ksn1))
        if args.legacy:
            database("legacy", legacy_values(args.legacy))
        print(f"prepared in {time.perf_counter() - started:.0f} s", flush=True)

        # 1. Each format alone (no API running).
        runs = [("ksn1 -> ksn2 (no API)", reencrypt(env_for("ksn1", 1), 1))]
        if args.legacy:  # --legacy 0: only the ksn1 and the under-load figures
            name = f"legacy -> ksn2 (no API, --jobs {args.jobs})"
            runs.append((name, reencrypt(env_for("legacy", 1), args.jobs)))

        # 2. v1 get with and without a reencrypt running (ksn2 -> ksn2 under the
        # next secret), in alternating samples: the reencrypt is paused
        # (SIGSTOP) for each "without" sample, so both see the same background.
        samples = []
        port = 4300 + os.getpid() % 500
        url = f"http://127.0.0.1:{port}"
        headers = {"Authorization": bearer_header("777", BOT_TOKEN)}
        for g, max_rate in enumerate(max_rates, start=2):
            api = start_api(env_for("ksn1", g), port)
            scenario = v1_get_scenario(url, headers)
            started = time.perf_counter()
            run = subprocess.Popen(
                [*KSNODE, "reencrypt", "--yes", "--no-backup", "--max-rate", str(max_rate)],
                env=env_for("ksn1", g),
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                cwd=ROOT,
            )
            time.sleep(1.0)  # past the command's start-up
            alone, during, paused = [], [], 0.0
            for _ in range(args.rounds):
                if run.poll() is not None:
                    break
                during.append(python_load(url, scenario, headers, args.concurrency, args.duration))
                run.send_signal(signal.SIGSTOP)
                stopped = time.perf_counter()
                alone.append(python_load(url, scenario, headers, args.concurrency, args.duration))
                run.send_signal(signal.SIGCONT)
                paused += time.perf_counter() - stopped
            out, err = run.communicate()
            wall = time.perf_counter() - started - paused
            if run.returncode != 0:
                raise SystemExit(f"reencrypt failed: {out}\n{err}")
            rows = int(re.search(r"rewritten: (\d+)", out).group(1))
            api.terminate()
            api.wait(timeout=30)
            api = None
            limit = f"--max-rate {max_rate:.0f}" if max_rate else "no --max-rate"
            runs.append((f"ksn2 -> ksn2 (v1 get load, {limit})", (rows, wall, rows / wall)))
            samples.append((limit, alone, during))

        print()
        print("Noisy figures: a 2-core VM shared with other work; the load generator is")
        print("Python and takes cores from the server.")
        print(f"{'reencrypt':<46} {'rows':>8} {'wall s':>8} {'rows/s':>8}")
        for name, (rows, wall, rate) in runs:
            print(f"{name:<46} {rows:>8} {wall:>8.1f} {rate:>8.0f}")
        print()
        print(
            f"v1 get, concurrency {args.concurrency}, {args.duration:.0f} s samples, alternating:"
        )
        for limit, alone, during in samples:
            if not during:
                print(f"  reencrypt {limit}: ended before a sample: use more --ksn1 rows")
                continue
            pairs = ", ".join(
                f"{d['rps']:.0f}/{a['rps']:.0f}" for d, a in zip(during, alone, strict=True)
            )
            ratio = sum(d["rps"] for d in during) / sum(a["rps"] for a in alone)
            p99 = max(d["p99_ms"] for d in during), max(a["p99_ms"] for a in alone)
            errors = sum(x["errors"] for x in during + alone)
            print(
                f"  reencrypt {limit}: req/s during/without {pairs}; ratio {ratio:.2f}; "
                f"worst p99 {p99[0]:.1f} ms during, {p99[1]:.1f} ms without; errors {errors}"
            )
    finally:
        if api is not None:
            api.kill()
        server.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
