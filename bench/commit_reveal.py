"""v2 get throughput with and without commit-reveal, in one run.

    python bench/commit_reveal.py [--rounds 2] [--duration 6] [--concurrency 4]

Starts a temporary embedded Postgres and one API program (COMMIT_REVEAL
optional), seeds one Telegram user per client thread, then measures in
alternating rounds (bare, cr, cr, bare ...):

* bare: ``POST /keyshare/v2`` with the bearer token only (an old client,
  whose token is never committed);
* cr: per v2 get, a commit (``POST /keyshare/v2/commit``, a fresh session,
  the thread's ephemeral key, which may reopen its token's hash once the
  previous sign_in session completed) and the reveal (the same get with
  ``cr_session_id`` and an Ed25519 ``cr_signature``): two requests per get.

Prints v2 gets per second of each side and their ratio.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import signal
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import requests
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(ROOT))

from nodestats import free_port  # noqa: E402
from scratch import api_program_env  # noqa: E402
from telegram_login import bearer_header  # noqa: E402

from shared.config import load_config  # noqa: E402
from shared.db.embedded import EmbeddedPostgres  # noqa: E402
from shared.db.migrations import run_migrations  # noqa: E402
from tests.support.api_program import start_api_program  # noqa: E402

BOT_TOKEN = "123456:BENCH-bot-token"


class Client:
    """One thread's user: a token, an ephemeral key, a registered wallet."""

    def __init__(self, url: str, user: str, node_pubkey: str):
        self.url, self.node_pubkey = url, node_pubkey
        self.http = requests.Session()
        self.headers = {"Authorization": bearer_header(user, BOT_TOKEN)}
        self.token = self.headers["Authorization"][len("Bearer ") :]
        self.key = Ed25519PrivateKey.generate()
        self.pub = self.key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw).hex()
        self.ed = os.urandom(32).hex()
        self.secp = "02" + os.urandom(32).hex()
        wallets = {
            "secp256k1": {"public_key": self.secp, "share": os.urandom(64).hex()},
            "ed25519": {"public_key": self.ed, "share": os.urandom(64).hex()},
        }
        r = self.post("/keyshare/v2/register", {"wallets": wallets})
        if r.status_code != 200:
            raise SystemExit(f"seeding failed: {r.status_code} {r.text}")
        self.body = {"auth_type": "telegram", "wallets": {"secp256k1": self.secp}}

    def post(self, path: str, body: dict, headers: dict | None = None):
        body = {"auth_type": "telegram", **body}
        return self.http.post(self.url + path, json=body, headers=headers or self.headers)

    def bare_get(self) -> bool:
        return self.post("/keyshare/v2", self.body).status_code == 200

    def cr_get(self) -> bool:
        session_id = str(uuid.uuid4())
        commit = {
            "session_id": session_id,
            "operation_type": "sign_in",
            "client_ephemeral_pubkey": self.pub,
            "id_token_hash": hashlib.sha256(("telegram" + self.token).encode()).hexdigest(),
        }
        if self.http.post(self.url + "/keyshare/v2/commit", json=commit).status_code != 200:
            return False
        message = self.node_pubkey + session_id + "telegram" + self.token + "sign_in"
        message += "get_key_shares"
        signature = self.key.sign(hashlib.sha256(message.encode()).digest()).hex()
        body = {**self.body, "cr_session_id": session_id, "cr_signature": signature}
        return self.post("/keyshare/v2", body).status_code == 200


def measure(clients: list[Client], side: str, duration: float) -> tuple[float, int]:
    done, errors = [0] * len(clients), [0] * len(clients)
    deadline = time.monotonic() + duration

    def run(i: int) -> None:
        call = clients[i].bare_get if side == "bare" else clients[i].cr_get
        while time.monotonic() < deadline:
            if call():
                done[i] += 1
            else:
                errors[i] += 1

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(clients))]
    started = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return sum(done) / (time.monotonic() - started), sum(errors)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=2, help="measurements per side")
    parser.add_argument("--duration", type=float, default=6.0, help="seconds per measurement")
    parser.add_argument("--concurrency", type=int, default=4)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="ksnode-cr-bench-") as tmp:
        root = Path(tmp)
        os.chmod(root, 0o755)  # the embedded Postgres may run as another user
        server = EmbeddedPostgres(root / "pg" / "pg_data")
        running = server.start()
        program = None
        try:
            server.create_database("bench")
            env = api_program_env(root, running, "bench", BOT_TOKEN, drop=("COMMIT_",))
            port = free_port()
            env["PORT"] = str(port)
            run_migrations(load_config(env))
            program = start_api_program(env, timeout=60)
            url = f"http://127.0.0.1:{port}"
            node_pubkey = requests.get(url + "/status", timeout=10).json()["ks_node_public_key"]
            base = int(time.time() * 1000)
            # Separate users per side: a token committed once is refused bare
            # from then on (that is the protection).
            clients = {
                side: [
                    Client(url, str(base + n * 1000 + i), node_pubkey)
                    for i in range(args.concurrency)
                ]
                for n, side in enumerate(("bare", "cr"))
            }
            for side in ("bare", "cr"):  # warm-up
                measure(clients[side], side, 1.0)
            totals = {"bare": [0.0, 0], "cr": [0.0, 0]}
            print(f"v2 get, {args.concurrency} clients, {args.duration:.0f} s per round")
            for i in range(args.rounds * 2):
                side = ("bare", "cr", "cr", "bare")[i % 4]
                rps, errors = measure(clients[side], side, args.duration)
                totals[side][0] += rps
                totals[side][1] += 1
                print(f"  {side:<4} {rps:8.0f} v2 gets/s  errors {errors}", flush=True)
        finally:
            if program is not None:
                program.send_signal(signal.SIGTERM)
                program.wait(30)
            server.stop()
    bare = totals["bare"][0] / totals["bare"][1]
    cr = totals["cr"][0] / totals["cr"][1]
    print(
        f"\nv2 get without commit-reveal {bare:.0f}/s, with commit + reveal {cr:.0f}/s:"
        f" cr/bare = {cr / bare:.2f}"
    )


if __name__ == "__main__":
    main()
