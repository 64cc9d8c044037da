"""Generated requests from /openapi.json against the live test server
(schemathesis + Hypothesis): no 5xx, every answer JSON (but /, /api_docs and
/metrics), and every status and body documented (issue 16 item 3).

Both generation modes run for every operation: positive bodies (authenticated
routes get a valid Telegram bearer and ``auth_type: telegram``, so they reach
the handlers) and negative ones (wrong types, missing fields, extra members,
which mostly end at the validators or the 401). Bounded: a fixed number of
examples per operation and mode, no shrinking, a wall-clock budget.
"""

from __future__ import annotations

import json
import time
from collections import Counter

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from services.api.ops.health import PROGRAMS
from shared.store import heartbeats
from tests.support.fakes.telegram import bearer
from tests.support.figures import report_figure

EXAMPLES_PER_MODE = 75  # x 2 modes x 15 POST operations: >= 2,000 requests (about 2,250)
BUDGET_SECONDS = 240.0  # generous; a run takes well under a minute on an idle machine
MIN_REQUESTS = 2000
NOT_JSON = {"/", "/metrics"}
# No client input gets a 5xx (a reshare share mismatch, 500 in the reference,
# is 409 here: docs/differences.md). The one 5xx expected is a node state:
# the admin routes of a node without ADMIN_PASSWORD (this fixture's) answer
# 503 ADMIN_DISABLED.
PRESCRIBED_5XX = {"ADMIN_DISABLED"}


def no_server_error(ctx, response, case):
    """schemathesis' not_a_server_error, but for the prescribed 5xx."""
    if response.status_code >= 500:
        try:
            code = json.loads(response.content).get("code")
        except ValueError:
            code = None
        if code in PRESCRIBED_5XX:
            return True
    return not_a_server_error(ctx, response, case)


CHECKS = [
    no_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
# Nothing listens here: social logins other than Telegram fail fast (401)
# instead of reaching out to the real providers.
DEAD_URL = "http://127.0.0.1:9/unreachable"


@pytest.fixture(scope="module")
def fuzz_api(start_api):
    # No admin password: the backup routes answer 503 ADMIN_DISABLED without
    # a 0.1 s PBKDF2 per request (the password path has its own tests).
    return start_api(
        admin_password="",
        google_jwks_url=DEAD_URL,
        auth0_jwks_url=DEAD_URL,
        x_userinfo_url=DEAD_URL,
        discord_userinfo_url=DEAD_URL,
        auth_http_timeout_seconds=2.0,
    )


# Text schemathesis never generates (Hypothesis leaves out surrogates) but
# clients can send: JSON escapes of unpaired surrogates, NUL, text longer
# than the columns, 10 k characters, numbers as strings.
HOSTILE_TEXT = [
    "\ud800",
    "02" + "\udfff" * 64,
    "a\u0000b",
    "x" * 300,
    "é" * 10_000,
    "telegram_" + "9" * 300,
    "1e400",
    "-1",
]
# Telegram ids: a normal one (most draws), NUL, longer than user_auth_id
# holds, an unpaired surrogate, negative.
TELEGRAM_IDS = ["987654321"] * 6 + ["1\u0000", "9" * 247, "12\ud800", "-5"]
FIELDS = ["public_key", "share", "auth_type", "user_auth_id", "curve_type", "password", "dump_path"]


def inject_hostile_text(body: dict, data) -> None:
    """Half the time, put one hostile string in one field of the body (a
    generated string member, nested ones included, or a known field)."""
    if not data.draw(st.booleans(), label="hostile"):
        return
    slots: list[tuple[dict, str]] = [(body, name) for name in FIELDS]
    pending = [body]
    while pending:
        node = pending.pop()
        for key, value in node.items():
            if isinstance(value, str):
                slots.append((node, key))
            elif isinstance(value, dict):
                pending.append(value)
    target, key = data.draw(st.sampled_from(slots), label="field")
    target[key] = data.draw(st.sampled_from(HOSTILE_TEXT), label="text")


def assert_json_answer(path: str, response: schemathesis.Response) -> None:
    if path in NOT_JSON:
        return
    content_type = response.headers.get("content-type", [""])[0]
    assert content_type.startswith("application/json"), (content_type, response.content[:200])
    body = json.loads(response.content)
    if response.status_code >= 400:
        assert body["success"] is False and body["code"] and isinstance(body["msg"], str)


def fuzz_operation(operation, mode, base_url, session, statuses, server_errors, deadline):
    """Run the generated cases of one operation in one mode; raise on the
    first that fails a check (no shrinking: the failing request is reported)."""
    authenticated = bool(operation.definition.raw.get("security"))

    @settings(
        max_examples=EXAMPLES_PER_MODE,
        deadline=None,
        database=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy(generation_mode=mode), data=st.data())
    def call(case, data):
        if time.monotonic() > deadline:
            return
        headers = bearer(data.draw(st.sampled_from(TELEGRAM_IDS))) if authenticated else {}
        if authenticated and mode is GenerationMode.POSITIVE and isinstance(case.body, dict):
            case.body["auth_type"] = "telegram"
        if isinstance(case.body, dict):
            inject_hostile_text(case.body, data)
        response = case.call(base_url=base_url, session=session, headers=headers, timeout=30)
        statuses[response.status_code] += 1
        if response.status_code >= 500:
            server_errors[json.loads(response.content).get("code")] += 1
        case.validate_response(response, checks=CHECKS, headers=headers)
        assert_json_answer(operation.path, response)

    call()


def programs_are_running(db, node_id: str) -> None:
    """Fresh heartbeats of the node's three programs, as supervisord's would be."""
    with db.transaction() as cur:
        for program in PROGRAMS:
            heartbeats.start(cur, node_id, program)


def test_generated_requests_get_documented_answers(fuzz_api, db, config):
    schema = schemathesis.openapi.from_url(f"{fuzz_api.url}/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 17
    session = requests.Session()
    statuses: Counter[int] = Counter()
    server_errors: Counter[str] = Counter()
    failures: list[str] = []
    started = time.monotonic()
    deadline = started + BUDGET_SECONDS
    for operation in operations:
        programs_are_running(
            db, config.effective_node_id
        )  # /health answers 200, not "degraded" 503
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            try:
                fuzz_operation(
                    operation, mode, fuzz_api.url, session, statuses, server_errors, deadline
                )
            except Unsatisfiable:
                continue  # no parameters to negate (the GET routes)
            except (Exception, BaseExceptionGroup) as exc:  # noqa: BLE001 - collect them all
                failures.append(f"{operation.label} ({mode.value}): {exc}")
    elapsed = time.monotonic() - started
    session.close()
    total = sum(statuses.values())
    report_figure(
        f"fuzz: {total} generated requests over {len(operations)} operations in "
        f"{elapsed:.1f} s, statuses {dict(sorted(statuses.items()))}, "
        f"5xx by code {dict(server_errors)}, {len(failures)} failing operation/mode pairs"
    )
    assert not failures, "\n\n".join(failures)
    assert set(server_errors) <= PRESCRIBED_5XX, server_errors
    assert total >= MIN_REQUESTS, f"only {total} requests within the time budget"
