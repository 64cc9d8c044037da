"""Retention with several nodes on one database: a node judges only the
dumps it holds, and BACKUP_MIN_KEEP counts files that exist on its disk."""

import datetime as dt
import uuid

import pytest
from psycopg2.extras import Json

from shared.backup.retention import apply_retention

NOW = dt.datetime(2026, 11, 25, 3, 0, tzinfo=dt.UTC)
ME, OTHER = "host-a:/srv/a", "host-b:/srv/b"


@pytest.fixture()
def rows(db, dump_dir, tmp_path):
    with db.cursor() as cur:
        cur.execute('DELETE FROM "2_pg_dumps"')
    elsewhere = tmp_path / "other_node_dump"
    elsewhere.mkdir()

    def add(days_old: float, holder: str | None, *, here: bool = True, with_file: bool = True):
        dump_id = str(uuid.uuid4())
        path = (dump_dir if here else elsewhere) / f"{dump_id}.dump"
        if with_file:
            path.write_bytes(b"PGDMP")
        meta = {"node_id": holder} if holder else None
        with db.cursor() as cur:
            cur.execute(
                'INSERT INTO "2_pg_dumps" (dump_id, status, dump_path, meta, created_at)'
                " VALUES (%s, 'COMPLETED', %s, %s, %s)",
                (
                    dump_id,
                    str(path),
                    Json(meta) if meta else None,
                    NOW - dt.timedelta(days=days_old),
                ),
            )
        return dump_id, path

    return add


def retention(db, dump_dir):
    with db.transaction() as cur:
        return apply_retention(cur, 7, 2, NOW, node_id=ME, dump_dir=dump_dir)


def statuses(db):
    with db.cursor() as cur:
        cur.execute('SELECT dump_id::text, status FROM "2_pg_dumps"')
        return dict(cur.fetchall())


def test_another_nodes_dumps_are_left_alone_even_when_not_visible_here(db, rows, dump_dir):
    theirs = [rows(days, OTHER, here=False) for days in (10, 20, 30)]
    gone_from_my_view = rows(40, OTHER, with_file=False)
    mine = [rows(days, ME) for days in (8, 9, 11)]
    deleted = retention(db, dump_dir)
    state = statuses(db)
    assert deleted == [mine[2][0]]
    assert all(state[i] == "COMPLETED" and p.exists() for i, p in theirs)
    assert state[gone_from_my_view[0]] == "COMPLETED"


def test_min_keep_counts_only_this_nodes_existing_files(db, rows, dump_dir):
    rows(8, OTHER, here=False)
    rows(8.5, OTHER, here=False)
    missing = rows(9, ME, with_file=False)
    kept = [rows(days, ME) for days in (10, 11)]
    extra = rows(12, ME)
    retention(db, dump_dir)
    state = statuses(db)
    assert [state[i] for i, _ in kept] == ["COMPLETED", "COMPLETED"]
    assert state[missing[0]] == "DELETED" and state[extra[0]] == "DELETED"
    assert not extra[1].exists()


def test_rows_from_before_node_ids_belong_to_the_node_whose_folder_has_the_file(db, rows, dump_dir):
    legacy_mine = [rows(days, None) for days in (8, 9, 10)]
    legacy_elsewhere = rows(11, None, here=False)
    retention(db, dump_dir)
    state = statuses(db)
    assert state[legacy_mine[2][0]] == "DELETED"
    assert state[legacy_elsewhere[0]] == "COMPLETED" and legacy_elsewhere[1].exists()
