"""What several benchmarks start from: a temporary folder with an embedded
Postgres in it (removed afterwards), the DB_* settings for nodes on it, and
a database filled with key shares for the backup and drill benchmarks."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from shared.config import Config, load_config
from shared.db.embedded import EmbeddedPostgres, RunningServer
from shared.db.migrations import run_migrations
from shared.db.pool import Database
from tests.conftest import create_database

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


@contextmanager
def scratch_postgres(prefix: str) -> Iterator[tuple[Path, RunningServer]]:
    """A temporary folder and an embedded Postgres in ``folder/pg_data``;
    the server is stopped and the folder removed however the run ends."""
    work = Path(tempfile.mkdtemp(prefix=prefix))
    server = EmbeddedPostgres(work / "pg_data")
    try:
        yield work, server.start()
    finally:
        server.stop()
        shutil.rmtree(work, ignore_errors=True)


def api_program_env(
    root: Path, pg: RunningServer, dbname: str, bot_token: str, *, drop: tuple[str, ...] = ()
) -> dict[str, str]:
    """The environment of API programs on ``dbname`` of ``pg``: this process's
    environment without its DB_* (and ``drop``) settings, a secret file, home
    and logs in ``root``, loopback, no rate limit, a Telegram bot token and an
    admin password. The caller adds PORT."""
    secret = root / "secret.txt"
    secret.write_text("bench-secret")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DB_", *drop))}
    env.update(
        {
            "DB_HOST": pg.host,
            "DB_PORT": str(pg.port),
            "DB_PASSWORD": pg.password,
            "DB_NAME": dbname,
            "ENCRYPTION_SECRET_PATH": str(secret),
            "KSNODE_HOME": str(root / "home"),
            "LOG_DIR": str(root / "logs"),
            "HOST": "127.0.0.1",
            "RATE_LIMIT_PER_MINUTE": "0",
            "TELEGRAM_BOT_TOKEN": bot_token,
            "LOG_LEVEL": "warning",
            "ADMIN_PASSWORD": "bench",
        }
    )
    return env


def node_db_env(pg: RunningServer) -> dict[str, str]:
    """DB_* settings for `ksnode up` nodes on a new database of ``pg``."""
    return {
        "DB_HOST": pg.host,
        "DB_PORT": str(pg.port),
        "DB_USER": "postgres",
        "DB_PASSWORD": pg.password,
        "DB_NAME": create_database(pg),
    }


def filled_database(
    work: Path, pg: RunningServer, shares: int, maxconn: int
) -> tuple[Config, Database, int, str]:
    """A migrated database ``bench`` holding ``shares`` key shares, with its
    config (dumps in ``work/dump``), a pool, the share count and its size."""
    create_database(pg, "bench")
    (work / "secret").write_text("bench-secret")
    config = load_config(
        {
            "DB_HOST": pg.host,
            "DB_PORT": str(pg.port),
            "DB_NAME": "bench",
            "DB_PASSWORD": pg.password,
            "ENCRYPTION_SECRET_PATH": str(work / "secret"),
            "DUMP_DIR": str(work / "dump"),
            "BACKUP_RETENTION_DAYS": "1000",
        }
    )
    run_migrations(config)
    db = Database(config, maxconn=maxconn)
    with db.transaction() as cur:
        cur.execute(FILL_SQL, {"n": shares})
    with db.cursor() as cur:
        cur.execute("VACUUM ANALYZE")
        cur.execute(
            "SELECT count(*), pg_size_pretty(pg_database_size(current_database()))"
            ' FROM "2_key_shares"'
        )
        count, size = cur.fetchone()
    return config, db, count, size
