"""A v1 registration writes its audit record in its own statement (issue 28).

The record commits with the share or not at all (ksn_audit_staged), and
the trail's thread seals it into the chain: exactly one record per
registration, in the chain within a second, the chain still verifies; a
registration that does not happen leaves no staged record; staged
records of a process that died before sealing them are sealed by another;
and a row written into the staging table by someone holding only the
database (no node MAC) is not sealed as the node's record.
"""

from __future__ import annotations

import datetime as dt
import time
import uuid

import pytest

from shared.audit.records import Record
from shared.audit.trail import AuditTrail, node_key
from shared.audit.verify import verify_chain
from shared.crypto.sealing import Cipher
from shared.infra.logthrottle import LogThrottle
from shared.store import audit as store
from shared.store import registration
from tests.support.audit_forgery import insert_staged
from tests.support.keyshare_helpers import Wallet, secp_key, share_hex


@pytest.fixture(scope="module")
def key(config):
    return node_key(config)


def staged_count(db) -> int:
    with db.cursor() as cur:
        cur.execute(f"SELECT count(*) FROM {store.STAGED}")
        return cur.fetchone()[0]


def chained(db, request_id: str, timeout: float = 5.0) -> list:
    deadline = time.monotonic() + timeout
    while True:
        with db.connection() as conn:
            found = [s for s in store.scan(conn) if s.record.request_id == request_id]
        if found or time.monotonic() > deadline:
            return found
        time.sleep(0.05)


def test_registration_record_is_chained_once_and_verifies(api, db, key):
    wallet, public = Wallet(api), secp_key()
    r = wallet.post(
        "/keyshare/v1/register",
        {"curve_type": "secp256k1", "public_key": public, "share": share_hex()},
    )
    assert r.status_code == 200, r.text
    request_id = r.headers["X-Request-Id"]
    found = chained(db, request_id)
    assert len(found) == 1, found
    record = found[0].record
    assert (record.event, record.outcome) == ("keyshare.v1.register", "ok")
    assert record.user_ref == key.user_ref(wallet.user_auth_id)
    assert record.public_keys == (f"secp256k1:{public}",)
    time.sleep(1.2)  # a later flush must not seal it a second time
    assert len(chained(db, request_id, timeout=0)) == 1
    assert staged_count(db) == 0
    with db.connection() as conn:
        report = verify_chain(key, store.scan(conn))
    assert report.ok, report


def test_a_taken_key_stages_nothing_and_records_the_refusal(api, db):
    first, second, public = Wallet(api), Wallet(api), secp_key()
    body = {"curve_type": "secp256k1", "public_key": public, "share": share_hex()}
    assert first.post("/keyshare/v1/register", body).status_code == 200
    before = staged_count(db)
    r = second.post("/keyshare/v1/register", body)
    assert r.status_code == 409 and r.json()["code"] == "DUPLICATE_PUBLIC_KEY"
    found = chained(db, r.headers["X-Request-Id"])
    assert [(s.record.event, s.record.outcome) for s in found] == [
        ("keyshare.v1.register", "DUPLICATE_PUBLIC_KEY")
    ]
    assert staged_count(db) <= before  # the refused statement left no record behind


def test_records_staged_by_a_dead_process_are_sealed_by_another(db, key, config):
    """The registration statement commits its record; nobody seals it (the
    process died). A trail of any other process seals it at its next flush,
    in time order with its own queue, and deletes it from the staging table."""
    identity = ("telegram", f"telegram_staged_{uuid.uuid4().hex[:12]}")
    at = dt.datetime.now(dt.UTC)
    staged = Record(
        "keyshare.v1.register",
        "ok",
        at=at,
        request_id=f"staged-{uuid.uuid4().hex[:8]}",
        client="127.0.0.1",
        auth_type="telegram",
        user_ref=key.user_ref(identity[1]),
        public_keys=("secp256k1:02" + "ab" * 32,),
    )
    with db.cursor() as cur:
        assert registration.register_wallet(
            cur,
            Cipher("staged-test-secret"),
            identity,
            "secp256k1",
            bytes.fromhex(secp_key()),
            share_hex(),
            audit=(staged, key.stage_mac(staged)),
        )
    assert staged_count(db) >= 1
    later = Record(
        "keyshare.v1.get",
        "ok",
        at=at + dt.timedelta(milliseconds=5),
        request_id=f"later-{uuid.uuid4().hex[:8]}",
        client="127.0.0.1",
        auth_type="telegram",
    )
    trail = AuditTrail(db, key, retention_days=0)
    trail.record(later)  # queued in this (other) process
    assert trail.flush()
    assert staged_count(db) == 0
    with db.connection() as conn:
        ids = [s.record.request_id for s in store.scan(conn)]
    assert ids.index(staged.request_id) < ids.index(later.request_id)
    (sealed,) = [s for s in chained(db, staged.request_id, timeout=0)]
    assert sealed.record.user_ref == staged.user_ref
    assert sealed.record.at == at
    trail.close()


def test_a_staged_row_without_the_node_mac_is_refused_not_sealed(db, key, caplog):
    """Someone holding only the database inserts a "registration" record into
    the staging table: the node does not seal it as its own; the chain gets
    an audit.staged_refused record naming what it claimed, and it verifies."""
    forged_id = f"forged-{uuid.uuid4().hex[:8]}"
    forged = Record(
        "keyshare.v1.register",
        "ok",
        request_id=forged_id,
        client="203.0.113.9",
        auth_type="google",
        user_ref="0" * 32,
    )
    insert_staged(db, forged)
    trail = AuditTrail(db, key, retention_days=0)
    assert trail.flush()
    assert staged_count(db) == 0
    with db.connection() as conn:
        records = [s.record for s in store.scan(conn)]
        report = verify_chain(key, store.scan(conn))
    assert not [r for r in records if r.request_id == forged_id]  # never as a record of its own
    (refused,) = [r for r in records if (r.detail or {}).get("request_id") == forged_id]
    assert (refused.event, refused.outcome) == ("audit.staged_refused", "refused")
    assert refused.detail == {"event": "keyshare.v1.register", "request_id": forged_id}
    assert report.ok, report
    (line,) = [r for r in caplog.records if getattr(r, "event", None) == "audit.staged_refused"]
    assert line.levelname == "ERROR"
    assert (line.claimed_event, line.claimed_request_id) == ("keyshare.v1.register", forged_id)
    trail.close()


def test_a_flood_of_forged_rows_writes_one_error_line_a_second(db, key, caplog):
    """Whoever can write the staging table can write a million rows: each is
    recorded in the chain in its own refusal, but the log gets one line a
    second (saying how many it left out), not a line per row."""
    now = [1000.0]
    trail = AuditTrail(db, key, retention_days=0)
    trail._refused_log = LogThrottle(clock=lambda: now[0])
    forged = [
        (Record("keyshare.v1.register", "ok", request_id=f"f-{i}"), "0" * 64) for i in range(50)
    ]
    records = trail._checked(forged)
    assert [r.detail["request_id"] for r in records] == [f"f-{i}" for i in range(50)]
    assert {(r.event, r.outcome) for r in records} == {("audit.staged_refused", "refused")}
    lines = [r for r in caplog.records if getattr(r, "event", None) == "audit.staged_refused"]
    assert len(lines) == 1 and lines[0].left_out == 0
    now[0] += 1.5
    trail._checked(forged[:1])
    lines = [r for r in caplog.records if getattr(r, "event", None) == "audit.staged_refused"]
    assert len(lines) == 2 and lines[1].left_out == 49  # the rest of the flood, counted
    trail.close()
