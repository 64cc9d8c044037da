"""Where the API's own Python time goes on each hot route, without the HTTP
server: the production WSGI stack (create_app behind the gate) called
in-process against a real embedded Postgres, under cProfile.

    python bench/profile_routes.py                  # the summary per route
    python bench/profile_routes.py --top 25         # and the top functions of each

It prints microseconds of process CPU per request (no profiler: the
figure to compare) and the share of the profiled time in each part of the
request (auth, SQL, crypto, audit, metrics, JSON, Flask, ...). What the
HTTP server adds (waitress parsing a request, threads handing it over)
is the difference to bench/cpu_split.py's "api" column.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import pstats
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from scratch import node_db_env, scratch_postgres  # noqa: E402
from telegram_login import bearer_header  # noqa: E402

BOT_TOKEN = "123456:BENCH-bot-token"

# Innermost matching file decides the part a sample (function) belongs to.
PARTS = [
    ("auth", ("services/api/auth/",)),
    ("audit", ("services/api/ops/audit", "shared/audit/")),
    ("metrics", ("services/api/ops/metrics", "prometheus_client")),
    ("limits", ("ratelimit", "shared_limiter", "admin_backoff")),
    ("crypto", ("shared/crypto/", "cryptography", "hashlib", "hmac", "_hashlib", "AESGCM")),
    ("SQL", ("psycopg2", "shared/db/", "shared/store/")),
    ("JSON", ("json/", "jsvalues", "flask/json", "_json")),
    ("logging", ("logging/", "pythonjsonlogger")),
    ("Flask/werkzeug", ("flask/", "werkzeug/")),
    ("route code", ("services/api/",)),
    # built-ins left: str/bytes/dict/isinstance calls and the like, of any part
    ("Python built-ins", ("<built-in", "<method")),
]


def part_of(filename: str) -> str:
    for name, needles in PARTS:
        if any(needle in filename for needle in needles):
            return name
    return "other"


def environ_for(method: str, path: str, body: bytes, headers: dict[str, str]) -> dict:
    environ = {
        "REQUEST_METHOD": method,
        "PATH_INFO": path,
        "QUERY_STRING": "",
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "4201",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "127.0.0.1",
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(body),
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": True,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
        "wsgi.version": (1, 0),
        "CONTENT_LENGTH": str(len(body)),
        "HTTP_HOST": "127.0.0.1:4201",
    }
    if body:
        environ["CONTENT_TYPE"] = "application/json"
    for name, value in headers.items():
        environ["HTTP_" + name.upper().replace("-", "_")] = value
    return environ


def call(app, method: str, path: str, body: bytes, headers: dict[str, str]) -> tuple[str, bytes]:
    seen: list[str] = []

    def start_response(status, response_headers, exc_info=None):
        seen.append(status)

    chunks = app(environ_for(method, path, body, headers), start_response)
    try:
        out = b"".join(chunks)
    finally:
        if hasattr(chunks, "close"):
            chunks.close()
    return seen[0], out


def build_app(env: dict[str, str]):
    os.environ.update(env)
    from services.api.app import create_app
    from services.api.server.gate import GatedApp
    from shared.config import load_config
    from shared.crypto.secretfiles import load_cipher
    from shared.db.migrations import run_migrations
    from shared.db.pool import Database
    from tests.conftest import build_node_context

    config = load_config()
    run_migrations(config)
    db = Database(config, query_timeout=config.db_query_timeout_seconds)
    ctx = build_node_context(config, db, load_cipher(config.effective_secret_path))
    return GatedApp(create_app(ctx))


def build_scratch_app(work: Path, pg):
    """build_app on the scratch Postgres ``pg``: a fresh secret in ``work``,
    Telegram logins with BOT_TOKEN, no rate limit, warnings only."""
    secret = work / "secret"
    secret.write_text(os.urandom(32).hex())
    secret.chmod(0o600)
    return build_app(
        {
            **node_db_env(pg),
            "ENCRYPTION_SECRET_PATH": str(secret),
            "TELEGRAM_BOT_TOKEN": BOT_TOKEN,
            "RATE_LIMIT_PER_MINUTE": "0",
            "LOG_LEVEL": "warning",
        }
    )


def seeded_v1_share(app) -> tuple[str, dict[str, str], str]:
    """A new Telegram user with one v1 share, registered through ``app``:
    (the user's id, its Authorization header, the share's public key)."""
    user = str(int(time.time() * 1000))
    auth = {"Authorization": bearer_header(user, BOT_TOKEN)}
    key = "02" + os.urandom(32).hex()
    register = {
        "auth_type": "telegram",
        "curve_type": "secp256k1",
        "public_key": key,
        "share": os.urandom(64).hex(),
    }
    status, out = call(app, "POST", "/keyshare/v1/register", json.dumps(register).encode(), auth)
    assert status.startswith("200"), out
    return user, auth, key


def v1_get(key: str, auth: dict[str, str]) -> tuple[str, str, bytes, dict[str, str]]:
    """``call``'s arguments for a v1 share read of ``key``."""
    body = json.dumps({"auth_type": "telegram", "public_key": key}).encode()
    return "POST", "/keyshare/v1", body, auth


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=4000)
    parser.add_argument("--top", type=int, default=0, help="also print the N costliest functions")
    args = parser.parse_args()
    with scratch_postgres("ksnode-profile-") as (work, pg):
        app = build_scratch_app(work, pg)
        user = str(int(time.time() * 1000))
        auth = {"Authorization": bearer_header(user, BOT_TOKEN)}
        v1_key, secp, ed = (
            "02" + os.urandom(32).hex(),
            "03" + os.urandom(32).hex(),
            os.urandom(32).hex(),
        )
        for path, body in [
            (
                "/keyshare/v1/register",
                {
                    "auth_type": "telegram",
                    "curve_type": "secp256k1",
                    "public_key": v1_key,
                    "share": os.urandom(64).hex(),
                },
            ),
            (
                "/keyshare/v2/register",
                {
                    "auth_type": "telegram",
                    "wallets": {
                        "secp256k1": {"public_key": secp, "share": os.urandom(64).hex()},
                        "ed25519": {"public_key": ed, "share": os.urandom(64).hex()},
                    },
                },
            ),
        ]:
            status, out = call(app, "POST", path, json.dumps(body).encode(), auth)
            assert status.startswith("200"), (path, status, out)
        routes = [
            ("GET /status", "GET", "/status", b"", {}),
            (
                "v1 get",
                "POST",
                "/keyshare/v1",
                json.dumps({"auth_type": "telegram", "public_key": v1_key}).encode(),
                auth,
            ),
            (
                "v2 get both",
                "POST",
                "/keyshare/v2",
                json.dumps(
                    {"auth_type": "telegram", "wallets": {"secp256k1": secp, "ed25519": ed}}
                ).encode(),
                auth,
            ),
            (
                "v1 check",
                "POST",
                "/keyshare/v1/check",
                json.dumps(
                    {
                        "auth_type": "telegram",
                        "user_auth_id": f"telegram_{user}",
                        "curve_type": "secp256k1",
                        "public_key": v1_key,
                    }
                ).encode(),
                {},
            ),
            ("v1 register", "POST", "/keyshare/v1/register", None, auth),
        ]

        def body_of(route):
            if route[3] is not None:
                return route[3]
            return json.dumps(
                {
                    "auth_type": "telegram",
                    "curve_type": "secp256k1",
                    "public_key": "02" + os.urandom(32).hex(),
                    "share": os.urandom(64).hex(),
                }
            ).encode()

        print(
            f"{'route':<14} {'us CPU/req':>10} {'us wall/req':>11}   share of profiled time by part"
        )
        for route in routes:
            name, method, path, _, headers = route
            bodies = [body_of(route) for _ in range(args.requests)]
            for body in bodies[:200]:  # warm-up: prepared statements, caches
                call(app, method, path, body if route[3] is not None else body_of(route), headers)
            cpu0, wall0 = time.process_time(), time.perf_counter()
            for body in bodies:
                status, out = call(app, method, path, body, headers)
            cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
            assert status.startswith("200"), (name, status, out)
            profiler = cProfile.Profile(time.thread_time)  # CPU, not waits on Postgres
            profiler.enable()
            for body in bodies[: args.requests // 2]:
                call(app, method, path, body_of(route) if route[3] is None else body, headers)
            profiler.disable()
            stats = pstats.Stats(profiler)
            parts: dict[str, float] = {}
            total = 0.0
            for (filename, _, function), (_, _, tottime, _, _) in stats.stats.items():  # type: ignore[attr-defined]
                # A built-in (filename "~") is named by what it is a method of.
                part = part_of(function if filename == "~" else filename)
                parts[part] = parts.get(part, 0.0) + tottime
                total += tottime
            shares = "  ".join(
                f"{part} {seconds / total:.0%}"
                for part, seconds in sorted(parts.items(), key=lambda kv: -kv[1])
                if seconds / total >= 0.01
            )
            n = args.requests
            print(f"{name:<14} {cpu / n * 1e6:10.0f} {wall / n * 1e6:11.0f}   {shares}", flush=True)
            if args.top:
                text = io.StringIO()
                pstats.Stats(profiler, stream=text).sort_stats("tottime").print_stats(args.top)
                print(text.getvalue().split("\n", 6)[-1])


if __name__ == "__main__":
    main()
