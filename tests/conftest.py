"""Shared fixtures: one embedded Postgres per test process (pytest-xdist runs two), a
fresh database per test module, and a real API server on 127.0.0.1 for HTTP tests."""

from __future__ import annotations

import datetime as dt
import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg2
import pytest
import requests

from shared.config import Config, load_config
from shared.crypto.sealing import Cipher
from shared.db.embedded import EmbeddedPostgres, RunningServer
from shared.db.migrations import run_migrations
from shared.db.pool import Database
from tests.support.figures import open_figures, take_figures
from tests.support.ops import OPS_TOKEN

TEST_SECRET = "test_enc_secret"
TESTS = Path(__file__).resolve().parent
NODE_TESTS = TESTS / "node"


@pytest.fixture(scope="session", autouse=True)
def no_node_left_behind() -> Iterator[None]:
    yield
    from tests.support.node_process import stop_leftover_nodes

    stop_leftover_nodes()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test under tests/node/ starts real programs: mark it ``node`` so
    ``pytest -m "not node"`` is the fast inner loop. The longest modules go
    first: pytest-xdist (``-n 2 --dist loadfile``, pyproject.toml) hands out
    whole modules in this order, so the run does not end with one worker
    alone on a long module."""
    for item in items:
        if NODE_TESTS in Path(str(item.fspath)).resolve().parents:
            item.add_marker(pytest.mark.node)
    items.sort(key=module_rank)


# The modules that take longest (the slowest durations of a full run), in
# that order; then the rest of tests/node/, then tests/api/ and tests/unit/.
# Only the order of modules changes, never that of tests within one.
LONGEST_MODULES = (
    "node/test_fuzz_openapi.py",
    "node/test_failover.py",
    "node/test_docker_compose.py",
    "node/test_chaos.py",
    "node/test_proxy_restart.py",
    "node/test_zero_downtime.py",
    "node/test_env_file.py",
    "node/test_embedded_pg_auth.py",
    "node/test_reload_refused.py",
    "node/test_reencrypt_resume.py",
)


def module_rank(item: pytest.Item) -> tuple[int, int]:
    path = Path(str(item.fspath)).resolve()
    relative = path.relative_to(TESTS).as_posix()
    if relative in LONGEST_MODULES:
        return 0, LONGEST_MODULES.index(relative)
    return 1, 0 if NODE_TESTS in path.parents else 1


def pytest_configure(config: pytest.Config) -> None:
    path = open_figures()
    if path is not None:
        config.stash[FIGURES_FILE] = path


def pytest_terminal_summary(terminalreporter, config: pytest.Config) -> None:
    path = config.stash.get(FIGURES_FILE, None)
    lines = take_figures(path) if path else []
    if lines:
        terminalreporter.write_sep("-", "figures reported by tests")
        for line in lines:
            terminalreporter.write_line(line)


FIGURES_FILE = pytest.StashKey[str]()


@pytest.fixture(scope="session")
def pg_server(tmp_path_factory) -> Iterator[RunningServer]:
    server = EmbeddedPostgres(tmp_path_factory.mktemp("pg") / "pg_data")
    running = server.start()
    yield running
    server.stop()


def admin_connection(pg: RunningServer, dbname: str = "postgres"):
    conn = psycopg2.connect(
        host=pg.host, port=pg.port, user="postgres", password=pg.password, dbname=dbname
    )
    conn.autocommit = True
    return conn


def create_database(pg: RunningServer, name: str | None = None) -> str:
    name = name or f"t_{uuid.uuid4().hex[:12]}"
    conn = admin_connection(pg)
    try:
        with conn.cursor() as cur:
            cur.execute(f'CREATE DATABASE "{name}"')
    finally:
        conn.close()
    return name


@pytest.fixture(scope="module")
def module_tmp(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("mod")


@pytest.fixture(scope="module")
def secret_file(module_tmp) -> Path:
    path = module_tmp / "encryption_secret.txt"
    path.write_text(TEST_SECRET)
    path.chmod(0o600)
    return path


@pytest.fixture(scope="module")
def env_for(pg_server, module_tmp, secret_file) -> Callable[..., dict[str, str]]:
    """Environment variables for a node on the test Postgres and module tmp dir."""

    def build(dbname: str, **overrides: str) -> dict[str, str]:
        env = {
            "DB_HOST": pg_server.host,
            "DB_PORT": str(pg_server.port),
            "DB_USER": "postgres",
            # the embedded server admits only its password's holder (pgauth.py)
            "DB_PASSWORD": pg_server.password,
            "DB_NAME": dbname,
            "KSNODE_HOME": str(module_tmp / "home"),
            "ENCRYPTION_SECRET_PATH": str(secret_file),
            "DUMP_DIR": str(module_tmp / "dump"),
            "LOG_DIR": str(module_tmp / "logs"),
            "ADMIN_PASSWORD": "test-admin-password",
            "TELEGRAM_BOT_TOKEN": "123456:TEST-bot-token",
            "RATE_LIMIT_PER_MINUTE": "0",
            "STATUS_CACHE_SECONDS": "0",
            "OPS_TOKEN": OPS_TOKEN,
        }
        env.update(overrides)
        return env

    return build


@pytest.fixture(scope="module")
def dbname(pg_server) -> str:
    """A fresh, migrated database for this test module."""
    name = create_database(pg_server)
    return name


@pytest.fixture(scope="module")
def config(env_for, dbname) -> Config:
    from dataclasses import replace

    cfg = load_config(env_for(dbname))
    run_migrations(cfg)
    # In-process servers of tests about other things call the admin routes
    # more often than their limits allow; tests/node/test_admin_guessing.py turns
    # them back on (programs started from env_for always have them).
    return replace(cfg, admin_limits=False)


@pytest.fixture(scope="module")
def db(config) -> Iterator[Database]:
    database = Database(config)
    yield database
    database.close()


@pytest.fixture(scope="session")
def cipher() -> Cipher:
    return Cipher(TEST_SECRET)


class ApiServer:
    """A real waitress server for create_app() in a background thread, with
    the production gate (one request runs Python at a time, gate.py)."""

    def __init__(self, app, host: str = "127.0.0.1"):
        from waitress.server import create_server

        from services.api.server.gate import GatedApp

        self.server = create_server(
            GatedApp(app),
            host=host,
            port=0,
            threads=8,
            ident=None,
            clear_untrusted_proxy_headers=False,
        )
        self.port = self.server.effective_port
        self.url = f"http://{host}:{self.port}"
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.session = requests.Session()

    def _run(self):
        try:
            self.server.run()
        except (OSError, ValueError):
            pass

    def start(self) -> ApiServer:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.close()
        self.server.task_dispatcher.shutdown(timeout=5)
        self.session.close()

    def get(self, path: str, **kw) -> requests.Response:
        return self.session.get(self.url + path, timeout=30, **kw)

    def post(self, path: str, **kw) -> requests.Response:
        return self.session.post(self.url + path, timeout=30, **kw)

    def request(self, method: str, path: str, **kw) -> requests.Response:
        return self.session.request(method, self.url + path, timeout=30, **kw)


def build_node_context(config: Config, db: Database, cipher: Cipher):
    from services.api.web.context import NodeContext
    from shared.keys import keypair as keypairs

    pair, _ = keypairs.load_or_create(db, cipher)
    return NodeContext(
        config=config,
        db=db,
        cipher=cipher,
        keypair=pair,
        launch_time=dt.datetime.now(dt.UTC),
        git_hash="abc1234",
        version="1.0.0",
    )


@pytest.fixture(scope="module")
def start_api(config, db, cipher) -> Iterator[Callable[..., ApiServer]]:
    """Factory: start an API server, optionally with config overrides
    (``start_api(rate_limit_per_minute=5)``). All are stopped at module end."""
    from dataclasses import replace

    from services.api.app import create_app

    servers: list[ApiServer] = []

    def start(**overrides) -> ApiServer:
        cfg = replace(config, **overrides) if overrides else config
        ctx = build_node_context(cfg, db, cipher)
        server = ApiServer(create_app(ctx)).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


@pytest.fixture(scope="module")
def api(start_api) -> ApiServer:
    """The default API server of a test module (rate limiting off)."""
    return start_api()


@pytest.fixture()
def dump_dir(tmp_path) -> Path:
    folder = tmp_path / "dump"
    folder.mkdir()
    return folder


@pytest.fixture()
def service(config, db, dump_dir):
    """The backup service on this module's database, dumping into ``dump_dir``."""
    from dataclasses import replace

    from shared.backup.service import BackupService
    from tests.support.backup_helpers import REAL_TOOLS

    return BackupService(replace(config, dump_dir=dump_dir), db, REAL_TOOLS)
