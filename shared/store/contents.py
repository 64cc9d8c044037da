"""Row counts and content checksums of the key tables: recorded in a dump's
history meta when it is taken, and compared after a restore drill."""

from __future__ import annotations

from typing import Any

from shared.store.rows import first_column

KEY_TABLES = ("2_users", "2_wallets", "2_key_shares", "2_server_keypairs")

# A row's text form depends on these settings; pin them so the checksum of
# the same rows is the same in any session (dump time, drill time).
STABLE_SETTINGS = (
    "SET LOCAL TimeZone = 'UTC'",
    "SET LOCAL DateStyle = 'ISO, YMD'",
    "SET LOCAL IntervalStyle = 'postgres'",
    "SET LOCAL extra_float_digits = 3",
    "SET LOCAL bytea_output = 'hex'",
)


def summarize(cur, tables: tuple[str, ...] = KEY_TABLES) -> dict[str, dict[str, Any]]:
    """table -> {"rows": n, "checksum": md5 of the sorted md5s of its rows}.
    Order-independent (the md5s are sorted), so a restore that loads the rows
    in another physical order still matches. Call inside a transaction."""
    for statement in STABLE_SETTINGS:
        cur.execute(statement)
    out: dict[str, dict[str, Any]] = {}
    for table in tables:
        cur.execute("SELECT to_regclass(%s) IS NOT NULL", (f'public."{table}"',))
        if not cur.fetchone()[0]:
            continue
        cur.execute(
            "SELECT count(*), coalesce(md5(string_agg(h, '' ORDER BY h)), '')"
            f' FROM (SELECT md5(t::text) AS h FROM public."{table}" t) rows'
        )
        count, checksum = cur.fetchone()
        out[table] = {"rows": int(count), "checksum": checksum}
    return out


def export_snapshot(cur) -> str:
    """Start a repeatable-read snapshot other sessions (pg_dump --snapshot)
    can share; the transaction must stay open while they use it."""
    cur.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
    cur.execute("SELECT pg_export_snapshot()")
    return cur.fetchone()[0]


def table_identities(cur) -> dict[str, int]:
    """name -> oid of the restorable tables. ``pg_restore --clean`` drops and
    recreates every table of the archive, so after a restore commits these
    oids change; after it rolls back they do not. That is how a worker that
    died mid-restore learns, at the next start, what the database really has."""
    cur.execute(
        "SELECT relname, oid::bigint FROM pg_class WHERE relnamespace = 'public'::regnamespace"
        " AND relkind IN ('r', 'p') AND relname NOT LIKE 'ksn\\_%%' AND relname <> '2_pg_dumps'"
    )
    return {name: int(oid) for name, oid in cur.fetchall()}


def restore_sessions(cur, application_name: str) -> int:
    """Sessions of a pg_restore still connected (its transaction undecided)."""
    cur.execute(
        "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s"
        " AND datname = current_database()",
        (application_name,),
    )
    return int(cur.fetchone()[0])


def scratch_databases(cur, prefix: str) -> list[str]:
    return first_column(
        cur, "SELECT datname FROM pg_database WHERE starts_with(datname, %s)", (prefix,)
    )
