"""The reporter against a fake Oko API on 127.0.0.1 (spec §10)."""

import logging
import time
from dataclasses import replace

import pytest

from services.reporter.main import Reporter
from shared.keys import keypair as keypairs
from shared.program.runtime import Runtime
from shared.store import heartbeats
from shared.store.tables import KEY_SHARES
from tests.support.fakes.oko_api import FakeOkoApi


@pytest.fixture()
def runtime(config, db, cipher):
    return Runtime(
        "reporter",
        replace(config, ks_node_report_password="report-pw", report_timeout_seconds=1.0),
        db,
        cipher,
        logging.getLogger("reporter-test"),
    )


def reporter_for(runtime, url):
    pair, _ = keypairs.load_or_create(runtime.db, runtime.cipher)
    runtime.config = replace(runtime.config, oko_api_base_url=url)
    return Reporter(runtime, pair.public_key_hex), pair


def test_report_has_reference_url_header_and_body(runtime, db):
    with db.transaction() as cur:
        cur.execute(
            f"INSERT INTO {KEY_SHARES} (wallet_id, enc_share, status) VALUES"
            " (gen_random_uuid(), 'x', 'active'), (gen_random_uuid(), 'y', 'active')"
        )
    with FakeOkoApi() as oko:
        reporter, pair = reporter_for(runtime, oko.url)
        result = reporter.run_once()
    assert result["ok"] is True
    assert oko.paths == ["/tss/v1/ks_node/telemetry"]
    assert oko.headers[0]["X-KS-NODE-PASSWORD"] == "report-pw"
    assert oko.headers[0]["Content-Type"] == "application/json"
    assert oko.reports[0] == {
        "public_key": pair.public_key_hex,
        "key_share_count": 2,
        "payload": {"db_status": "OK", "error_msg": None},
    }


def test_rejected_report_is_recorded_and_the_loop_survives(runtime, db):
    with FakeOkoApi(password="other") as oko:
        reporter, _ = reporter_for(runtime, oko.url)
        result = reporter.run_once()
        assert result["ok"] is False and result["status"] == 401
        result = reporter.run_once()
    with db.cursor() as cur:
        beat = heartbeats.all_beats(cur, runtime.config.effective_node_id)["reporter"]
    assert beat["last_result"]["status"] == 401


def test_unreachable_and_slow_oko_api_fail_within_the_timeout(runtime):
    reporter, _ = reporter_for(runtime, "http://127.0.0.1:9")
    assert reporter.run_once()["ok"] is False
    with FakeOkoApi(delay=3) as oko:
        reporter, _ = reporter_for(runtime, oko.url)
        started = time.monotonic()
        result = reporter.run_once()
        elapsed = time.monotonic() - started
    assert result["ok"] is False and result["status"] is None
    assert elapsed < 2.9  # bounded by REPORT_TIMEOUT (1 s), not by the fake's delay


def test_report_names_the_newest_active_key_after_rotation(runtime, db, cipher):
    with FakeOkoApi() as oko:
        reporter, _ = reporter_for(runtime, oko.url)
        new = keypairs.rotate(db, cipher)
        reporter.run_once()
    assert oko.reports[-1]["public_key"] == new.public_key_hex


def test_a_redirect_is_a_failed_report_and_the_password_goes_nowhere_else(runtime, db, caplog):
    # Two real servers on 127.0.0.1: the configured one answers 307 towards
    # the other, which must receive nothing (no request, so no password).
    with FakeOkoApi() as elsewhere, FakeOkoApi(redirect_to=elsewhere.url) as oko:
        reporter, _ = reporter_for(runtime, oko.url)
        with caplog.at_level(logging.ERROR, logger="reporter-test"):
            result = reporter.run_once()
    assert oko.paths == ["/tss/v1/ks_node/telemetry"]
    assert oko.headers[0]["X-KS-NODE-PASSWORD"] == "report-pw"
    assert elsewhere.paths == [] and elsewhere.headers == []
    assert result["ok"] is False and result["status"] == 307
    assert "307" in result["error"]
    failed = [r for r in caplog.records if getattr(r, "event", None) == "telemetry.failed"]
    assert [r.status for r in failed] == [307]
    with db.cursor() as cur:
        beat = heartbeats.all_beats(cur, runtime.config.effective_node_id)["reporter"]
    assert beat["last_result"]["ok"] is False and beat["last_result"]["status"] == 307


def test_a_failing_target_logs_once_then_a_summary_per_15_minutes_then_recovery(
    runtime, db, caplog
):
    now = [1000.0]  # the reporter's clock: 180 s per report without waiting for it
    pair, _ = keypairs.load_or_create(runtime.db, runtime.cipher)
    with FakeOkoApi(status=503) as oko:
        runtime.config = replace(runtime.config, oko_api_base_url=oko.url)
        reporter = Reporter(runtime, pair.public_key_hex, clock=lambda: now[0])
        with caplog.at_level(logging.INFO, logger="reporter-test"):
            for _ in range(12):  # 36 minutes of failed reports
                assert reporter.run_once()["ok"] is False
                now[0] += 180
            oko.status = 200
            assert reporter.run_once()["ok"] is True
        assert len(oko.reports) == 13  # every report was still sent
    events = [(r.levelname, r.event) for r in caplog.records]
    assert events == [
        ("ERROR", "telemetry.failed"),
        ("ERROR", "telemetry.still_failing"),  # at 15 min
        ("ERROR", "telemetry.still_failing"),  # at 30 min
        ("INFO", "telemetry.recovered"),
        ("INFO", "telemetry.sent"),
    ]
    summaries = [r for r in caplog.records if r.event == "telemetry.still_failing"]
    assert [r.failures for r in summaries] == [6, 11]
    assert "503" in summaries[0].error
    recovered = caplog.records[3]
    assert recovered.failures == 12 and "12 failed reports" in recovered.getMessage()
    # /health and /metrics read the heartbeat: it still has the latest result.
    with db.cursor() as cur:
        beat = heartbeats.all_beats(cur, runtime.config.effective_node_id)["reporter"]
    assert beat["last_result"]["ok"] is True
