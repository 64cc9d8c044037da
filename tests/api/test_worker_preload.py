"""The api program's parent imports, before it forks, every module a worker
needs for create_app() and its first requests (program.preload_worker_modules):
a module a worker imports after the fork is a private copy in each worker
(issue 28, memory). Run in a fresh interpreter, since this test process has
long imported everything."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.support.ops import OPS_TOKEN

ROOT = Path(__file__).resolve().parents[2]

# The parent's state before the fork (program and what build_context uses),
# then the snapshot, then what a worker does: create the app, build the
# identity providers on its first authenticated request, answer the
# routes that import on first use.
WORKER = f"""
import datetime as dt, json, sys
import flask.testing  # the test client stands in for waitress
from services.api.routes.admin_backoff import AdminBackoff
from services.api.server import program
from services.api.web.context import NodeContext
from shared.config import load_config
from shared.crypto.secretfiles import load_cipher
from shared.db.pool import Database
from shared.keys import keypair as keypairs

config = load_config()
cipher = load_cipher(config.effective_secret_path, config.encryption_secret_previous_paths)
db = Database(config)
pair, _ = keypairs.load_or_create(db, cipher)
ctx = NodeContext(config=config, db=db, cipher=cipher, keypair=pair,
                  launch_time=dt.datetime.now(dt.UTC), git_hash=None, version="t")
ctx.extras["admin_backoff"] = AdminBackoff(60)  # made before the fork, as serve_node does
if sys.argv[1] == "preload":
    program.preload_worker_modules()
before = set(sys.modules)

from services.api.app import create_app
from services.api.auth.providers import build_verifiers

app = create_app(ctx)
build_verifiers(config)
client = app.test_client()
ops = {{"Authorization": "Bearer {OPS_TOKEN}"}}
statuses = [client.get(path, headers=ops).status_code
            for path in ("/status", "/health", "/metrics", "/openapi.json", "/api_docs")]
late = sorted(m for m in set(sys.modules) - before if not m.startswith("encodings."))
print(json.dumps({{"late": late, "statuses": statuses}}))
db.close()
"""


def run_worker(env: dict[str, str], mode: str) -> dict:
    result = subprocess.run(
        [sys.executable, "-c", WORKER, mode],
        env={**os.environ, **env},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_a_worker_imports_nothing_after_the_fork(env_for, config):
    env = env_for(config.db_name)
    preloaded = run_worker(env, "preload")
    assert all(status < 500 for status in preloaded["statuses"]), preloaded
    assert preloaded["late"] == [], " ".join(preloaded["late"])
    # Without the preload the same worker imports the route modules late
    # (what the test guards against coming back). The identity providers
    # (PyJWT) and the key check are imported by the modules that use them,
    # so even then they come with the program, before any fork.
    cold = run_worker(env, "cold")
    assert "services.api.routes.keyshare_v1" in cold["late"]
    assert "jwt" not in cold["late"]
    assert "shared.keys.keycheck" not in cold["late"]
