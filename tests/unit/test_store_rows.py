"""The store's row readers (shared/store/rows.py) and the store functions
built on them, against the module's real database."""

import datetime as dt

from shared.audit.records import AuditKey, Record, seal_chain
from shared.store import audit, contents, dumps, jobs
from shared.store.rows import count_with, first_column


def test_first_column_and_count_with_read_what_postgres_answers(db):
    with db.cursor() as cur:
        assert first_column(cur, "SELECT n, -n FROM generate_series(1, 3) n") == [1, 2, 3]
        assert first_column(cur, "SELECT n FROM generate_series(1, %s) n", (2,)) == [1, 2]
        assert count_with(cur, "SELECT count(*), max(n) FROM generate_series(1, 0) n", ()) == (
            0,
            None,
        )
        assert count_with(cur, "SELECT count(*), max(n) FROM generate_series(4, %s) n", (9,)) == (
            6,
            9,
        )


def test_interrupted_dumps_fail_but_are_not_counted_as_failures(db):
    with db.cursor() as cur:
        cur.execute('DELETE FROM "2_pg_dumps"')
        failed, failed_at = dumps.start(cur)
        dumps.fail(cur, failed, "pg_dump exited with 1")
        left, _ = dumps.start(cur)
        assert dumps.fail_interrupted(cur) == [left]
        assert dumps.fail_interrupted(cur) == []
        assert dumps.failures_since(cur, None) == (1, failed_at)
        assert dumps.failures_since(cur, failed_at) == (0, None)


def test_only_overdue_queued_jobs_expire(db):
    with db.cursor() as cur:
        cur.execute("DELETE FROM ksn_jobs")
        overdue = jobs.enqueue(cur, "backup", {}, wait_seconds=-1)
        waiting = jobs.enqueue(cur, "backup", {}, wait_seconds=600)
        patient = jobs.enqueue(cur, "backup", {})
        assert jobs.expire_overdue(cur) == [overdue]
        assert jobs.get(cur, overdue).state == "expired"
        assert {jobs.get(cur, j).state for j in (waiting, patient)} == {"queued"}


def test_audit_cut_counts_and_names_the_last_seq_it_deleted(db):
    now = dt.datetime.now(dt.UTC)
    days = [dt.timedelta(days=n) for n in (30, 20, 10, 0)]
    records = [Record("test.event", "ok", at=now - ago) for ago in days]
    with db.cursor() as cur:
        cur.execute("DELETE FROM ksn_audit")
        assert audit.retention_cut(cur, now, 10) == (0, None)
        audit.insert(cur, seal_chain(AuditKey("test secret"), None, records))
        assert audit.retention_cut(cur, now - dt.timedelta(days=5), 2) == (2, 2)
        assert audit.retention_cut(cur, now - dt.timedelta(days=5), 2) == (1, 3)
        assert audit.count(cur) == 1


def test_scratch_databases_are_found_by_prefix(db, dbname):
    with db.cursor() as cur:
        assert contents.scratch_databases(cur, "no_such_prefix_") == []
        assert contents.scratch_databases(cur, dbname) == [dbname]
