"""The API program: waitress serving create_app() until SIGTERM."""

from __future__ import annotations

import datetime as dt
import logging

from waitress.server import create_server

from services.api.app import create_app
from services.api.context import NodeContext
from shared import keypair as keypairs
from shared.heartbeat import HeartbeatThread, announce_start
from shared.runtime import StopFlag, bootstrap, fail, wait_for_database
from shared.version import git_hash, version

PROGRAM = "api"


def build_context(runtime) -> NodeContext:
    try:
        pair, created = keypairs.load_or_create(runtime.db, runtime.cipher)
    except keypairs.KeypairError as exc:
        runtime.log.error("cannot load server keypair", extra={"event": "startup.failed",
                                                               "error": str(exc)})
        fail(str(exc))
        raise
    if created:
        runtime.log.info("server keypair created", extra={"event": "keypair.created",
                                                          "version": pair.version,
                                                          "public_key": pair.public_key_hex})
    return NodeContext(
        config=runtime.config, db=runtime.db, cipher=runtime.cipher, keypair=pair,
        launch_time=dt.datetime.now(dt.UTC), git_hash=git_hash(), version=version())


def main() -> None:
    runtime = bootstrap(PROGRAM)
    stop = StopFlag()
    server_holder: list = []
    stop.install(lambda: server_holder and server_holder[0].close())
    wait_for_database(runtime.db, stop, runtime.log)
    ctx = build_context(runtime)
    app = create_app(ctx)
    announce_start(runtime.db, PROGRAM)
    HeartbeatThread(runtime.db, PROGRAM, runtime.config.heartbeat_interval_seconds, stop).start()
    config = runtime.config
    server = create_server(
        app, host=config.host, port=config.port, threads=config.api_threads,
        ident=None, connection_limit=1000, channel_timeout=60, backlog=2048,
        clear_untrusted_proxy_headers=True)
    server_holder.append(server)
    # waitress warns "Task queue depth is N" under any burst; it is noise here.
    logging.getLogger("waitress.queue").setLevel(logging.ERROR)
    runtime.log.info("api listening", extra={"event": "api.listening", "host": config.host,
                                             "port": server.effective_port,
                                             "threads": config.api_threads,
                                             "version": ctx.version, "git_hash": ctx.git_hash,
                                             "public_key": ctx.keypair.public_key_hex if ctx.keypair else None})
    try:
        server.run()
    except (OSError, ValueError):
        # close() from the signal handler makes the loop's select fail; that is our exit.
        if not stop.is_set():
            raise
    finally:
        server.task_dispatcher.shutdown(timeout=10)
        runtime.db.close()
        runtime.log.info("api stopped", extra={"event": "api.stopped"})
