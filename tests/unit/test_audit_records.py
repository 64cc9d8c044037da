"""Audit records: the MAC is HMAC-SHA256, any change to a field is caught,
and awkward text survives the trip through COPY and INSERT unchanged."""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import replace

import pytest

from shared.audit.records import AuditKey, Record, seal_chain, utc_now
from shared.audit.trail import AuditTrail, record_once
from shared.audit.verify import verify_chain
from shared.store import audit as store


def test_the_mac_is_hmac_sha256():
    key = AuditKey("a node secret\n")
    for data in (b"", b"x", bytes(range(256)) * 5):
        assert key._mac(data) == hmac.new(key._key, data, hashlib.sha256).hexdigest()


def test_user_ref_is_keyed_and_stable():
    one, other = AuditKey("secret one"), AuditKey("secret two")
    assert one.user_ref("google_1") == one.user_ref("google_1")
    assert one.user_ref("google_1") != one.user_ref("google_2")
    assert one.user_ref("google_1") != other.user_ref("google_1")
    assert len(one.user_ref("google_1")) == 32
    assert one.user_ref("x\ud800") != one.user_ref("x")  # a lone surrogate still hashes


@pytest.mark.parametrize(
    "change",
    [
        {"event": "keyshare.v2.get"},
        {"outcome": "UNAUTHORIZED"},
        {"request_id": "other"},
        {"client": "198.51.100.1"},
        {"auth_type": "google"},
        {"user_ref": "0" * 32},
        {"public_keys": ("secp256k1:invalid",)},
        {"detail": {"status": 404}},
    ],
)
def test_any_changed_field_breaks_the_seal(change):
    key = AuditKey("s")
    record = Record("keyshare.v1.get", "ok", request_id="r", client="127.0.0.1")
    (sealed,) = seal_chain(key, None, [record])
    assert key.intact(sealed)
    assert not key.intact(replace(sealed, record=replace(record, **change)))


AWKWARD = [
    "tab\there",
    "line\nbreak\r",
    "back\\slash \\N",
    '"quoted", {braces}',
    "é ü 漢字 🔑",
]


def awkward_records(n: int) -> list[Record]:
    return [
        Record(
            "admin.restore",
            "DUMP_FILE_NOT_FOUND",
            at=utc_now(),
            request_id=AWKWARD[i % len(AWKWARD)],
            client="local:" + AWKWARD[(i + 1) % len(AWKWARD)],
            auth_type="admin",
            detail={"z": AWKWARD[(i + 2) % len(AWKWARD)], "a": i, "status": 400},
        )
        for i in range(n)
    ]


def test_awkward_text_round_trips_and_verifies(db):
    key = AuditKey("round trip")
    with db.cursor() as cur:
        cur.execute(f"DELETE FROM {store.AUDIT}")
    for record in awkward_records(3):  # INSERT path
        record_once(db, key, record)
    trail = AuditTrail(db, key)
    for record in awkward_records(50):  # COPY path (a batch)
        trail.record(record)
    assert trail.flush()
    with db.connection() as conn:
        stored = list(store.scan(conn))
    assert len(stored) == 53
    assert {s.record.request_id for s in stored} == set(AWKWARD)
    assert stored[5].record.detail["z"] in AWKWARD
    report = verify_chain(key, stored)
    assert report.ok, report.problems
    trail._stop.set()


def test_a_row_the_database_refuses_does_not_block_the_others(db, caplog):
    key = AuditKey("refused")
    with db.cursor() as cur:
        cur.execute(f"DELETE FROM {store.AUDIT}")
    trail = AuditTrail(db, key)
    trail.record(Record("keyshare.v1.get", "ok", request_id="before"))
    trail.record(Record("admin.restore", "ok", request_id="bad", detail={"dump_path": "a\x00b"}))
    trail.record(Record("keyshare.v1.get", "ok", request_id="after"))
    with caplog.at_level("ERROR", logger="audit"):
        assert trail.flush()
    with db.connection() as conn:
        stored = list(store.scan(conn))
    assert [s.record.request_id for s in stored] == ["before", "after"]
    assert verify_chain(key, stored).ok
    (refused,) = [r for r in caplog.records if r.event == "audit.refused"]
    assert refused.audit["request_id"] == "bad"
    assert trail.flush() and len(trail._pending) == 0  # nothing left to retry
    trail._stop.set()
