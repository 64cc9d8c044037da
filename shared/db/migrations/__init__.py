"""Schema migrations: numbered SQL files applied under an advisory lock.

Each file runs in its own transaction and is recorded in
``ksn_schema_migrations``. The files themselves are idempotent
(``IF NOT EXISTS``), so a database created by the reference node (it has
``knex_migrations``) is adopted with its tables and rows untouched, and
several runners starting at once are safe: they queue on the lock and the
later ones find nothing to do.
"""

from __future__ import annotations

import logging
from importlib import resources

from shared.config import Config
from shared.db.pool import connect

log = logging.getLogger(__name__)

# Arbitrary constant shared by every ksnode process: "ksnmigr" in hex-ish.
MIGRATION_LOCK_KEY = 0x6B736E6D69677200


def migration_files() -> list[tuple[str, str]]:
    """(name, sql) of every migration, in order."""
    folder = resources.files(__package__)
    names = sorted(p.name for p in folder.iterdir() if p.name.endswith(".sql"))
    return [(name, folder.joinpath(name).read_text(encoding="utf-8")) for name in names]


def run_migrations(config: Config) -> list[str]:
    """Apply pending migrations; returns the names applied by this call."""
    conn = connect(config)
    applied: list[str] = []
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT pg_advisory_lock(%s)", (MIGRATION_LOCK_KEY,))
        conn.commit()
        try:
            with conn.cursor() as cur:
                cur.execute(
                    "CREATE TABLE IF NOT EXISTS ksn_schema_migrations ("
                    " name text PRIMARY KEY,"
                    " applied_at timestamptz NOT NULL DEFAULT now())"
                )
                cur.execute("SELECT to_regclass('public.knex_migrations') IS NOT NULL")
                reference_db = cur.fetchone()[0]
                cur.execute("SELECT name FROM ksn_schema_migrations")
                done = {row[0] for row in cur.fetchall()}
            conn.commit()
            if reference_db and not done:
                log.info(
                    "adopting a database created by the reference node",
                    extra={"event": "migrate.adopt"},
                )
            for name, sql in migration_files():
                if name in done:
                    continue
                with conn.cursor() as cur:
                    cur.execute(sql)
                    cur.execute("INSERT INTO ksn_schema_migrations (name) VALUES (%s)", (name,))
                conn.commit()
                applied.append(name)
                log.info("migration applied", extra={"event": "migrate.applied", "migration": name})
        finally:
            conn.rollback()
            with conn.cursor() as cur:
                cur.execute("SELECT pg_advisory_unlock(%s)", (MIGRATION_LOCK_KEY,))
            conn.commit()
    finally:
        conn.close()
    return applied
