"""The API program: waitress serving create_app() until SIGTERM, then
finishing the requests in progress.

With API_WORKERS > 1 (default: one per core, at most 8) the program binds
the listening socket once and forks that many worker processes that accept
on it; this is what lets Python use every core. The parent only supervises:
it restarts a worker that dies and, on SIGTERM, stops them all. Workers
share one rate limiter in shared memory; everything else (pool, caches) is
per worker. The parent holds no threads or connections when it forks.
Workers also share a connection table (balance.py) so that keep-alive
connections spread evenly over them instead of piling onto one.

The listening socket is not bound here when ``ksnode up`` runs the node:
it is borrowed from ``ksnode up``, which keeps it across restarts of this
program (shared/node/listener.py), or handed over by the previous image of this
process on a reload (SIGHUP, handover.py).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import gc
import logging
import os
import signal
import socket
import sys
import threading
from dataclasses import replace

from services.api.app import create_app
from services.api.ops import audit
from services.api.ops.metrics import (
    enable_multiprocess,
    ensure_samples_folder,
    remove_samples,
    samples_folder,
)
from services.api.ops.token import note_if_unset
from services.api.routes import blueprint_modules
from services.api.routes.admin import warn_if_disabled
from services.api.routes.admin_backoff import AdminBackoff
from services.api.server.balance import BalancedServer, ConnectionTable
from services.api.server.gate import GatedApp
from services.api.server.handover import Handover, parse_args, reexec
from services.api.server.limits import ConnectionLimits
from services.api.server.workerpool import WorkerPool
from services.api.web.context import NodeContext
from services.api.web.ratelimit import build_limiters
from services.api.web.shared_limiter import SharedFixedWindowLimiter
from shared.config import Config
from shared.db.pool import Database
from shared.infra.version import git_hash, version
from shared.keys import keypair as keypairs
from shared.node.codecheck import check_code
from shared.node.listener import LISTEN_BACKLOG, ListenError, bind_listening, fetch_kept_socket
from shared.node.reloadstate import record_refusal
from shared.program.heartbeat import start_heartbeat
from shared.program.runtime import Runtime, StopFlag, fail, run

PROGRAM = "api"
PARENT_CHECK_SECONDS = 1.0
DRAIN_SECONDS = 10  # requests in progress at SIGTERM may finish (< workerpool.WORKER_STOP_SECONDS)
YOUNG_COLLECTION_THRESHOLD = 2_000  # gc generation 0; see serve()


def preload_worker_modules() -> None:
    """Import the route blueprints, which create_app() would otherwise import
    in each worker: in the pool's parent, before the fork, they and all they
    import (the identity providers with PyJWT and cryptography.x509, the
    key check of /health and /metrics) are shared with every worker
    copy-on-write; imported after it, each worker held its own copy (issue
    28: the API 78 -> 73 MiB after load)."""
    blueprint_modules()


def build_context(runtime: Runtime) -> NodeContext:
    try:
        pair, created = keypairs.load_or_create(runtime.db, runtime.cipher)
    except keypairs.KeypairError as exc:
        runtime.log.error(
            "cannot load server keypair", extra={"event": "startup.failed", "error": str(exc)}
        )
        fail(str(exc))
        raise
    if created:
        runtime.log.info(
            "server keypair created",
            extra={
                "event": "keypair.created",
                "version": pair.version,
                "public_key": pair.public_key_hex,
            },
        )
    return NodeContext(
        config=runtime.config,
        db=runtime.db,
        cipher=runtime.cipher,
        keypair=pair,
        launch_time=dt.datetime.now(dt.UTC),
        git_hash=git_hash(),
        version=version(),
    )


def listening_socket(config: Config, handed_fd: int | None = None) -> tuple[socket.socket, str]:
    """The socket handed over by a reload (handover.py), else the one
    ``ksnode up`` keeps across restarts (shared/node/listener.py), else one bound
    here (the api program was started on its own)."""
    if handed_fd is not None:
        handed = socket.socket(fileno=handed_fd)
        handed.setblocking(False)
        return handed, "handed over"
    kept = fetch_kept_socket(config.run_dir, config.port)
    if kept is not None:
        kept.setblocking(False)
        return kept, "kept"
    try:
        sock = bind_listening(config.host, config.port)
    except ListenError as exc:
        fail(str(exc))
        raise
    sock.setblocking(False)
    return sock, "own"


def watch_parent(parent: int, stop: threading.Event) -> None:
    """Stop (draining) when the pool's parent is gone: the listening socket
    outlives the api program (shared/node/listener.py), so an orphaned worker
    would otherwise keep serving old code next to its replacement."""

    def watch() -> None:
        while not stop.wait(PARENT_CHECK_SECONDS):
            if os.getppid() != parent:
                stop.set()

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def serve(
    ctx: NodeContext,
    sock: socket.socket,
    table: ConnectionTable,
    slot: int,
    log: logging.Logger,
    parent: int | None = None,
) -> None:
    """Run one waitress server on ``sock`` until SIGTERM (in this process),
    or until ``parent`` (a forked worker's parent) exits."""
    stop = StopFlag().install()
    if parent is not None:
        watch_parent(parent, stop)
    # One request runs Python at a time; waits on providers and jobs step out (gate.py).
    flask_app = create_app(ctx)
    app = GatedApp(flask_app)
    start_heartbeat(ctx.db, ctx.config, PROGRAM, stop)
    # Proxy headers are ours to judge (TRUST_PROXY_HOPS); waitress would strip them.
    server = BalancedServer(
        app,
        sock,
        table=table,
        slot=slot,
        threads=ctx.config.api_threads,
        ident=None,
        limits=ConnectionLimits.from_config(ctx.config),
        metrics=flask_app.extensions["ksnode_connection_metrics"],
        connection_limit=1000,
        backlog=LISTEN_BACKLOG,
        clear_untrusted_proxy_headers=False,
    )
    log.info(
        "api worker serving",
        extra={"event": "api.worker_serving", "slot": slot, "pid": os.getpid()},
    )
    # Start-up objects never become garbage: keep them out of every
    # collection. Young objects are collected every 2,000 allocations (the
    # default is 700): each request leaves one reference cycle behind
    # (werkzeug's URL matcher, ~650 bytes), so the threshold bounds that
    # garbage; at 20,000 it held ~1.6 MiB per worker at a time and the
    # worker's memory grew by that much more under load (bench/README).
    gc.collect()
    gc.freeze()
    gc.set_threshold(YOUNG_COLLECTION_THRESHOLD, 20, 20)
    # waitress warns "Task queue depth is N" under any burst; it is noise here.
    logging.getLogger("waitress.queue").setLevel(logging.ERROR)
    try:
        server.serve_until(stop, drain_seconds=DRAIN_SECONDS)
    finally:
        server.task_dispatcher.shutdown(timeout=10)
        audit.close(ctx)  # commit the queued read records before the pool goes
        ctx.db.close()


def main(argv: list[str] | None = None) -> None:
    handover = parse_args(sys.argv[1:] if argv is None else argv)
    # A reload (SIGHUP) is only acted on once the worker pool runs; until
    # then, and with a single worker, it must not kill the program.
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    run(PROGRAM, lambda runtime, _stop: serve_node(runtime, handover))


def serve_node(runtime: Runtime, handover: Handover) -> None:
    """Serve until stopped: in this process with one worker, else as the
    pool's parent (workerpool.py), re-executing itself on a reload."""
    # A request gets its 503 instead of hanging with a stuck database (dbwatch.py).
    runtime.db.query_timeout = runtime.config.db_query_timeout_seconds
    ctx = build_context(runtime)
    config = runtime.config
    sock, origin = listening_socket(config, handover.fd)
    workers = config.effective_api_workers
    runtime.log.info(
        "api listening",
        extra={
            "event": "api.listening",
            "host": config.host,
            "port": sock.getsockname()[1],
            "socket": origin,
            "workers": workers,
            "threads": config.api_threads,
            "version": ctx.version,
            "git_hash": ctx.git_hash,
            "public_key": ctx.keypair.public_key_hex if ctx.keypair else None,
        },
    )
    warn_if_disabled(config, runtime.log)
    note_if_unset(config, runtime.log)
    table = ConnectionTable(workers)
    if workers == 1:
        serve(ctx, sock, table, 0, runtime.log)
    else:
        ctx.extras["limiters"] = build_limiters(
            config.rate_limit_per_minute, SharedFixedWindowLimiter
        )
        ctx.extras["admin_backoff"] = AdminBackoff(config.admin_backoff_max_seconds)
        samples = samples_folder(config.run_dir)
        enable_multiprocess(samples, fresh=handover.fd is None)
        preload_worker_modules()
        runtime.db.close()  # no connection may cross the fork: each worker opens its own pool
        parent = os.getpid()

        def run_worker(slot: int) -> None:  # in the forked worker
            ensure_samples_folder()
            db = Database(config, query_timeout=config.db_query_timeout_seconds)
            serve(replace(ctx, db=db), sock, table, slot, runtime.log, parent)

        pool = WorkerPool(
            workers,
            run_worker,
            table,
            runtime.log,
        )
        # Everything imported and built so far is shared with the workers
        # copy-on-write; frozen, a worker's collections never write to those
        # objects' headers, so their pages stay shared (PSS, issue 28).
        gc.collect()
        gc.freeze()
        pool.start(handover.old_workers)
        while True:
            pool.supervise()
            if not pool.reload_requested or pool.stopping:
                break
            pool.reload_taken()  # a SIGHUP during the check asks again
            problem = check_code(["api"], cancel=lambda: pool.stopping)
            if pool.stopping:
                continue  # SIGTERM during the check: stop, as asked
            if problem is None:
                runtime.log.info(
                    "api reloading in place",
                    extra={"event": "api.reloading", "workers": list(pool.slots)},
                )
                reexec(sock, list(pool.slots))  # does not return
            # A broken upgrade on disk must not take the serving workers down.
            runtime.log.error(
                "api reload refused: the code on disk does not start; still serving: %s",
                problem,
                extra={"event": "api.reload_refused", "reason": problem},
            )
            record_refusal(config.run_dir, parent, problem)
        remove_samples(samples)
        with contextlib.suppress(OSError):
            samples.rmdir()  # in /dev/shm it would hold memory until the next boot
