"""Migrations: exact reference schema, idempotent, concurrent-safe, adopt a
reference database untouched."""

import threading

import pytest

from shared.config import load_config
from shared.db.migrations import run_migrations
from tests.conftest import admin_connection, create_database

REFERENCE_CONSTRAINTS = {
    "2_users_pkey",
    "2_users_auth_type_user_auth_id_key",
    "2_wallets_pkey",
    "2_wallets_public_key_key",
    "2_key_shares_pkey",
    "2_key_shares_unique",
    "2_server_keypairs_pkey",
    "2_server_keypairs_version_key",
    "2_pg_dumps_pkey",
    "2_commit_reveal_sessions_pkey",
    "2_cr_sessions_client_pubkey_key",
    "2_cr_sessions_id_token_hash_key",
    "2_commit_reveal_api_calls_pkey",
    "2_cr_api_calls_signature_key",
    "2_cr_api_calls_session_api_key",
}
REFERENCE_INDEXES = {
    "idx_2_server_keypairs_is_active",
    "idx_2_cr_sessions_state",
    "idx_2_cr_sessions_expires_at",
    "idx_2_cr_api_calls_session_id",
}


@pytest.fixture()
def fresh(pg_server, env_for):
    name = create_database(pg_server)
    return load_config(env_for(name)), name


def columns(pg_server, name, table):
    conn = admin_connection(pg_server, name)
    try:
        with conn.cursor() as cur:
            cur.execute(
                "SELECT column_name, data_type, character_maximum_length, is_nullable,"
                " column_default FROM information_schema.columns WHERE table_name = %s"
                " ORDER BY ordinal_position",
                (table,),
            )
            return cur.fetchall()
    finally:
        conn.close()


def test_reference_tables_match_the_spec(fresh, pg_server):
    config, name = fresh
    run_migrations(config)
    users = columns(pg_server, name, "2_users")
    assert [c[0] for c in users] == [
        "user_id",
        "auth_type",
        "user_auth_id",
        "status",
        "created_at",
        "updated_at",
        "aux",
    ]
    assert users[1][1:3] == ("character varying", 64)
    assert users[3][4] == "'active'::character varying"
    shares = {c[0]: c for c in columns(pg_server, name, "2_key_shares")}
    assert shares["enc_share"][1] == "bytea"
    assert shares["status"][2] == 255 and shares["status"][4] is None
    conn = admin_connection(pg_server, name)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT conname FROM pg_constraint WHERE conname LIKE '2_%%'")
            assert {r[0] for r in cur.fetchall()} >= REFERENCE_CONSTRAINTS
            cur.execute("SELECT indexname FROM pg_indexes WHERE indexname LIKE 'idx_2_%%'")
            assert {r[0] for r in cur.fetchall()} == REFERENCE_INDEXES
            cur.execute(
                "SELECT attidentity FROM pg_attribute WHERE attrelid ="
                " '\"2_server_keypairs\"'::regclass AND attname = 'version'"
            )
            assert cur.fetchone()[0] == "a"
    finally:
        conn.close()


def test_second_run_applies_nothing(fresh):
    config, _ = fresh
    assert run_migrations(config) != []
    assert run_migrations(config) == []


def test_four_concurrent_runners_are_safe(fresh, pg_server):
    config, name = fresh
    results, errors = [], []

    def run():
        try:
            results.append(run_migrations(config))
        except Exception as exc:  # noqa: BLE001 - collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    applied = [r for r in results if r]
    assert len(applied) == 1  # exactly one runner did the work
    conn = admin_connection(pg_server, name)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT count(*) FROM ksn_schema_migrations")
            assert cur.fetchone()[0] == len(applied[0])
    finally:
        conn.close()


REFERENCE_DDL = """
CREATE TABLE knex_migrations (id serial PRIMARY KEY, name varchar(255), batch integer,
    migration_time timestamptz);
CREATE TABLE knex_migrations_lock (index serial PRIMARY KEY, is_locked integer);
INSERT INTO knex_migrations (name, batch, migration_time) VALUES
    ('20251223194800_initial.ts', 1, now()), ('20260127152006_commit_reveal_sessions.ts', 2, now());
CREATE TABLE "2_users" (user_id uuid NOT NULL DEFAULT gen_random_uuid(),
    auth_type varchar(64) NOT NULL, user_auth_id varchar(255) NOT NULL,
    status varchar(16) NOT NULL DEFAULT 'active', created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(), aux jsonb,
    CONSTRAINT "2_users_pkey" PRIMARY KEY (user_id),
    CONSTRAINT "2_users_auth_type_user_auth_id_key" UNIQUE (auth_type, user_auth_id));
CREATE TABLE "2_key_shares" (share_id uuid NOT NULL, wallet_id uuid NOT NULL,
    enc_share bytea NOT NULL, status varchar NOT NULL, reshared_at timestamptz NOT NULL DEFAULT now(),
    created_at timestamptz NOT NULL DEFAULT now(), updated_at timestamptz NOT NULL DEFAULT now(),
    aux jsonb, CONSTRAINT "2_key_shares_pkey" PRIMARY KEY (share_id),
    CONSTRAINT "2_key_shares_unique" UNIQUE (wallet_id));
INSERT INTO "2_users" (auth_type, user_auth_id) VALUES ('google', 'google_1'), ('x', 'x_2');
INSERT INTO "2_key_shares" (share_id, wallet_id, enc_share, status)
    VALUES (gen_random_uuid(), gen_random_uuid(), 'QUJD', 'active');
"""


def test_reference_database_is_adopted_with_rows_untouched(fresh, pg_server):
    config, name = fresh
    conn = admin_connection(pg_server, name)
    try:
        with conn.cursor() as cur:
            cur.execute(REFERENCE_DDL)
            cur.execute('SELECT * FROM "2_users" ORDER BY user_auth_id')
            users_before = cur.fetchall()
            cur.execute("SELECT * FROM knex_migrations ORDER BY id")
            knex_before = cur.fetchall()
        run_migrations(config)
        with conn.cursor() as cur:
            cur.execute('SELECT * FROM "2_users" ORDER BY user_auth_id')
            assert cur.fetchall() == users_before
            cur.execute("SELECT * FROM knex_migrations ORDER BY id")
            assert cur.fetchall() == knex_before
            cur.execute('SELECT count(*) FROM "2_key_shares"')
            assert cur.fetchone()[0] == 1
            # the legacy-script variant of status (unbounded varchar) is kept as it was
            cur.execute(
                "SELECT character_maximum_length FROM information_schema.columns"
                " WHERE table_name = '2_key_shares' AND column_name = 'status'"
            )
            assert cur.fetchone()[0] is None
            cur.execute("SELECT to_regclass('\"2_wallets\"'), to_regclass('ksn_jobs')")
            assert all(cur.fetchone())
    finally:
        conn.close()
