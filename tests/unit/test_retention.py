"""Retention: older than BACKUP_RETENTION_DAYS goes, but never below
BACKUP_MIN_KEEP good dumps, and only after a successful new dump."""

import datetime as dt
import uuid

import pytest

from shared.backup.retention import apply_retention
from tests.support.backup_helpers import fake_pg_dump

NOW = dt.datetime(2026, 11, 25, 3, 0, tzinfo=dt.UTC)


@pytest.fixture()
def rows(db, dump_dir):
    with db.cursor() as cur:
        cur.execute('DELETE FROM "2_pg_dumps"')

    def add(
        days_old: float, status: str = "COMPLETED", with_file: bool = True
    ) -> tuple[str, object]:
        dump_id = str(uuid.uuid4())
        path = dump_dir / f"{dump_id}.dump"
        if with_file:
            path.write_bytes(b"PGDMP")
        with db.cursor() as cur:
            cur.execute(
                'INSERT INTO "2_pg_dumps" (dump_id, status, dump_path, created_at)'
                " VALUES (%s, %s, %s, %s)",
                (dump_id, status, str(path), NOW - dt.timedelta(days=days_old)),
            )
        return dump_id, path

    return add


def statuses(db):
    with db.cursor() as cur:
        cur.execute('SELECT dump_id::text, status FROM "2_pg_dumps"')
        return dict(cur.fetchall())


def test_old_dumps_deleted_recent_kept(db, rows, dump_dir):
    recent = [rows(d) for d in (0.1, 1, 2, 6.9)]
    old = [rows(d) for d in (7.5, 10, 30)]
    failed_old = rows(40, status="FAILED")
    with db.transaction() as cur:
        deleted = apply_retention(cur, 7, 3, NOW, node_id="this-node", dump_dir=dump_dir)
    assert sorted(deleted) == sorted(i for i, _ in old)
    state = statuses(db)
    assert all(state[i] == "DELETED" and not p.exists() for i, p in old)
    assert all(state[i] == "COMPLETED" and p.exists() for i, p in recent)
    assert state[failed_old[0]] == "FAILED"


def test_min_keep_guards_the_newest_good_dumps(db, rows, dump_dir):
    olds = [rows(d) for d in (8, 9, 10, 11, 12)]
    with db.transaction() as cur:
        apply_retention(cur, 7, 3, NOW, node_id="this-node", dump_dir=dump_dir)
    state = statuses(db)
    assert [state[i] for i, _ in olds] == ["COMPLETED"] * 3 + ["DELETED"] * 2


def test_missing_files_do_not_count_as_good(db, rows, dump_dir):
    gone = rows(8, with_file=False)
    kept = [rows(d) for d in (9, 10, 11)]
    with db.transaction() as cur:
        apply_retention(cur, 7, 3, NOW, node_id="this-node", dump_dir=dump_dir)
    state = statuses(db)
    assert state[gone[0]] == "DELETED"  # row marked even though the file was already gone
    assert all(state[i] == "COMPLETED" for i, _ in kept)


def test_failed_backup_runs_no_retention(config, db, rows, dump_dir, tmp_path):
    from dataclasses import replace

    from shared.backup.errors import DumpFailed
    from shared.backup.pgtools import PgTools
    from shared.backup.service import BackupService
    from tests.support.backup_helpers import REAL_TOOLS

    old = [rows(d) for d in (20, 21, 22, 23)]
    tools = PgTools(fake_pg_dump(tmp_path, "exit 1"), REAL_TOOLS.pg_restore, 18)
    with pytest.raises(DumpFailed):
        BackupService(replace(config, dump_dir=dump_dir), db, tools).backup_now()
    assert all(p.exists() for _, p in old)


def test_many_old_rows_after_a_real_backup(service, db, rows):
    for days in range(8, 60):
        rows(days)
    service.backup_now()
    state = statuses(db)
    assert list(state.values()).count("COMPLETED") == 3  # the new one + 2 newest old ones


def test_a_row_naming_a_file_outside_dump_dir_deletes_nothing(db, rows, dump_dir, tmp_path):
    """The history table is writable by the programs' account and `ksnode
    backup` may run retention as root: a row of this node whose path names
    a file elsewhere (directly or through a link in DUMP_DIR) is refused."""
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    victim = outside / "precious"
    victim.write_text("keep me")
    (dump_dir / "sub").symlink_to(outside)
    [rows(d) for d in (0.1, 1, 2)]
    planted = []
    for path in (victim, dump_dir / "sub" / "precious"):
        dump_id = str(uuid.uuid4())
        with db.cursor() as cur:
            cur.execute(
                'INSERT INTO "2_pg_dumps" (dump_id, status, dump_path, created_at, meta)'
                " VALUES (%s, 'COMPLETED', %s, %s, '{\"node_id\": \"this-node\"}')",
                (dump_id, str(path), NOW - dt.timedelta(days=30)),
            )
        planted.append(dump_id)
    with db.transaction() as cur:
        deleted = apply_retention(cur, 7, 3, NOW, node_id="this-node", dump_dir=dump_dir)
    assert not set(planted) & set(deleted)
    assert victim.read_text() == "keep me"
    state = statuses(db)
    assert all(state[i] == "COMPLETED" for i in planted)
