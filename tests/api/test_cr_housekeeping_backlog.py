"""Commit-reveal housekeeping works a backlog off in bounded runs (a commit
flood followed by a quiet hour): one statement over every expired row would
outlast DB_QUERY_TIMEOUT_SECONDS, roll back, and do so at every run."""

from __future__ import annotations

from shared.store import cr_sessions

BATCH = 40
N = 100  # more than two batches of each table


def backlog(cur, tag: str) -> None:
    """N expired sessions (past their grace) with their reservations, N
    expired reservations, bindings and spent ids, all marked by ``tag``."""
    cur.execute(
        'INSERT INTO "2_commit_reveal_sessions" (session_id, operation_type,'
        " client_ephemeral_pubkey, id_token_hash, expires_at, created_at)"
        " SELECT gen_random_uuid(), 'sign_in', sha256(('s' || i || %s)::bytea),"
        " encode(sha256(('s' || i || %s)::bytea), 'hex'),"
        " now() - interval '2 hours', now() - interval '2 hours 5 minutes'"
        " FROM generate_series(1, %s) i",
        (tag, tag, N),
    )
    cur.execute(
        "INSERT INTO ksn_cr_reserved_hashes"
        " SELECT encode(sha256(('r' || i || %s)::bytea), 'hex'), '\\x00'::bytea,"
        " now() - interval '1 minute' FROM generate_series(1, %s) i",
        (tag, N),
    )
    cur.execute(
        "INSERT INTO ksn_cr_credentials SELECT sha256(('c' || i || %s)::bytea), '\\x00'::bytea,"
        " gen_random_uuid(), now() - interval '1 minute' FROM generate_series(1, %s) i",
        (tag, N),
    )
    cur.execute(
        "INSERT INTO ksn_cr_spent_sessions SELECT gen_random_uuid(), now() - interval '1 minute'"
        " FROM generate_series(1, %s) i",
        (N,),
    )


def expired_left(cur) -> tuple[int, int, int, int]:
    counts = []
    for sql in (
        "SELECT count(*) FROM \"2_commit_reveal_sessions\" WHERE expires_at < now() - interval '1 hour'",
        "SELECT count(*) FROM ksn_cr_reserved_hashes WHERE reserved_until < now()",
        "SELECT count(*) FROM ksn_cr_credentials WHERE bound_until < now()",
        "SELECT count(*) FROM ksn_cr_spent_sessions WHERE spent_until < now()",
    ):
        cur.execute(sql)
        counts.append(cur.fetchone()[0])
    return counts[0], counts[1], counts[2], counts[3]


def test_a_backlog_is_removed_in_bounded_runs(db):
    with db.transaction() as cur:
        backlog(cur, "backlog")
        before = expired_left(cur)
    assert min(before) >= N
    with db.transaction() as cur:
        first = cr_sessions.housekeep(cur, batch=BATCH)
    assert first == (BATCH, BATCH, BATCH, BATCH)  # bounded, and says it is behind
    with db.cursor() as cur:
        assert expired_left(cur) == tuple(b - BATCH for b in before)
    runs = 1
    while True:
        with db.transaction() as cur:
            counts = cr_sessions.housekeep(cur, batch=BATCH)
        runs += 1
        if max(counts) < BATCH:
            break
        assert runs < 20
    with db.cursor() as cur:
        assert expired_left(cur) == (0, 0, 0, 0)
        # the removed sessions' hashes stay reserved and their ids spent
        cur.execute(
            "SELECT count(*) FROM ksn_cr_reserved_hashes WHERE id_token_hash IN"
            " (SELECT encode(sha256(('s' || i || 'backlog')::bytea), 'hex')"
            " FROM generate_series(1, %s) i) AND reserved_until > now()",
            (N,),
        )
        assert cur.fetchone()[0] == N


def test_the_commit_route_comes_back_sooner_while_behind(api, db, monkeypatch):
    """A run that hit its bound is repeated HOUSEKEEPING_BEHIND_EVERY later,
    not a minute later; one that did not waits the minute."""
    import functools
    import time
    import uuid

    from services.api.routes import commit

    monkeypatch.setattr(cr_sessions, "HOUSEKEEPING_BATCH", 3)
    monkeypatch.setattr(cr_sessions, "housekeep", functools.partial(cr_sessions.housekeep, batch=3))
    with db.transaction() as cur:
        cur.execute(
            'INSERT INTO "2_commit_reveal_sessions" (session_id, operation_type,'
            " client_ephemeral_pubkey, id_token_hash, expires_at, created_at)"
            " SELECT gen_random_uuid(), 'sign_in', sha256(('b' || i || %s)::bytea),"
            " encode(sha256(('b' || i || %s)::bytea), 'hex'),"
            " now() - interval '2 hours', now() - interval '2 hours 5 minutes'"
            " FROM generate_series(1, 5) i",
            (str(uuid.uuid4()), str(uuid.uuid4())),
        )

    def commit_once() -> float:
        monkeypatch.setitem(commit._housekeeping, "last", 0.0)
        body = {
            "session_id": str(uuid.uuid4()),
            "operation_type": "sign_in",
            "client_ephemeral_pubkey": uuid.uuid4().hex * 2,
            "id_token_hash": uuid.uuid4().hex * 2,
        }
        assert api.post("/keyshare/v2/commit", json=body).status_code == 200
        return time.monotonic() - commit._housekeeping["last"]

    # behind: the next run is due in HOUSEKEEPING_BEHIND_EVERY
    since = commit_once()
    assert since >= commit.HOUSEKEEPING_EVERY - commit.HOUSEKEEPING_BEHIND_EVERY
    # caught up (whatever else is left is below the batch): a minute
    for _ in range(50):
        if since < commit.HOUSEKEEPING_EVERY - commit.HOUSEKEEPING_BEHIND_EVERY:
            break
        since = commit_once()
    assert since < commit.HOUSEKEEPING_BEHIND_EVERY
    with db.cursor() as cur:
        cur.execute(
            'SELECT count(*) FROM "2_commit_reveal_sessions"'
            " WHERE expires_at < now() - interval '1 hour'"
        )
        assert cur.fetchone()[0] == 0
