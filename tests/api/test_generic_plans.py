"""The hot statements run their generic plan (issue 28).

They are prepared once per pool connection; left to plan_cache_mode=auto,
Postgres planned the share lookup anew on every execution, which cost four
times the lookup itself. A pool connection forces the generic plan, and
that plan stays index lookups (it is what every request runs)."""

from __future__ import annotations

import uuid

from shared.db.pool import Database
from shared.store import registration, shares
from tests.support.keyshare_helpers import secp_key


def plans(cur, name: str) -> tuple[int, int]:
    cur.execute(
        "SELECT generic_plans, custom_plans FROM pg_prepared_statements WHERE name = %s", (name,)
    )
    return cur.fetchone()


def test_share_lookup_runs_its_generic_plan(config):
    db = Database(config, maxconn=1, query_timeout=5.0)
    try:
        key = bytes.fromhex(secp_key())
        with db.cursor() as cur:
            for _ in range(8):  # "auto" would try custom plans for the first five, and keep them
                shares.lookup_guarded(
                    cur, "telegram", "telegram_nobody", [key], "00" * 32, b"\x01" * 32
                )
                shares.lookup(cur, "telegram", "telegram_nobody", [key])
            assert plans(cur, "ksn_share_lookup_guarded") == (8, 0)
            assert plans(cur, "ksn_share_lookup") == (8, 0)
            cur.execute(
                "EXPLAIN EXECUTE ksn_share_lookup_guarded (%s, %s, %s, %s, %s)",
                ("telegram", "telegram_nobody", [key], "00" * 32, b"\x01" * 32),
            )
            plan = "\n".join(row[0] for row in cur.fetchall())
        assert "Seq Scan" not in plan and "Hash Join" not in plan, plan
        assert "2_wallets_public_key_key" in plan, plan
        assert "ksn_cr_credentials_pkey" in plan, plan  # the bound-login check, by its key
    finally:
        db.close()


def test_registration_plan_is_index_lookups(config):
    db = Database(config, maxconn=1, query_timeout=5.0)
    try:
        with db.cursor() as cur:
            # the guarded form is the one a bearer request runs (the
            # committed-token check in the statement)
            _name, sql = registration.STATEMENTS[False, True]
            cur.execute(f"PREPARE plan_of_register AS {sql}")
            cur.execute(
                "EXPLAIN EXECUTE plan_of_register (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
                (
                    "telegram",
                    "telegram_nobody",
                    str(uuid.uuid4()),
                    "secp256k1",
                    bytes.fromhex(secp_key()),
                    str(uuid.uuid4()),
                    b"sealed",
                    "ab" * 32,
                    b"credential",
                ),
            )
            plan = "\n".join(row[0] for row in cur.fetchall())
            cur.execute("DEALLOCATE plan_of_register")
        assert "Seq Scan" not in plan, plan
        assert "ksn_cr_credentials_pkey" in plan, plan
    finally:
        db.close()


def test_a_pool_without_query_limits_keeps_the_servers_own(config):
    db = Database(config, maxconn=1)
    try:
        with db.cursor() as cur:
            cur.execute("SHOW plan_cache_mode")
            assert cur.fetchone() == ("force_generic_plan",)
            cur.execute("SHOW statement_timeout")
            assert cur.fetchone() == ("0",)
    finally:
        db.close()
