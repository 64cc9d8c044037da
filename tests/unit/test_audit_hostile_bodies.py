"""An audit record is built from whatever JSON a client sent: every value a
body can carry in every field the builder reads gives a record (the field
said "invalid"), never an exception. A list as ``auth_type`` raised
TypeError in the trail's thread: the caller's record was lost and an error
with a traceback logged per request."""

from __future__ import annotations

import datetime as dt
import itertools

import pytest

from services.api.ops.audit import EVENTS, Seen, build_record
from shared.audit.records import AuditKey

HOSTILE = [None, 0, 1.5, True, "", "x" * 5000, [], ["google"], {}, {"a": 1}, [[["deep"]]]]
FIELDS = ["auth_type", "user_auth_id", "public_key", "curve_type", "wallets", "dump_path"]
KEY = AuditKey("a test audit secret")


@pytest.mark.parametrize("endpoint", sorted(EVENTS))
def test_every_value_in_every_field_builds_a_record(endpoint):
    event = EVENTS[endpoint]
    for field, value, status in itertools.product(FIELDS, HOSTILE, (200, 400)):
        answer = {"code": "INVALID_REQUEST", "msg": "no"} if status == 400 else None
        body = {field: value, "wallets": {"secp256k1": value, "ed25519": {"public_key": value}}}
        seen = Seen(
            event,
            status,
            answer,
            body,
            None,
            "r-1",
            "127.0.0.1",
            None,
            dt.datetime.now(dt.UTC),
            None,
        )
        record = build_record(seen, KEY, 0, ())
        if field == "auth_type" and not event.admin:  # no value above is a provider
            assert record.auth_type == "invalid"
        assert all(key.endswith(":invalid") for key in record.public_keys if value is not None)
