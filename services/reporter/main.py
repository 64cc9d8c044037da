"""The reporter program: a telemetry POST every REPORT_INTERVAL_SECONDS."""

from __future__ import annotations

import time
from collections.abc import Callable

from services.reporter.failurelog import FailureLog
from services.reporter.oko_client import OkoClient
from services.reporter.telemetry import collect, send
from shared.keys import keypair as keypairs
from shared.program.runtime import Runtime, StopFlag, fail, run
from shared.store import heartbeats

PROGRAM = "reporter"


class Reporter:
    def __init__(
        self, runtime: Runtime, public_key: str, clock: Callable[[], float] = time.monotonic
    ):
        self.runtime = runtime
        self.public_key = public_key
        self.client = OkoClient()  # the standard library's HTTP: requests costs ~10 MiB
        self.failures = FailureLog(runtime.log, clock=clock)

    def startup(self) -> None:
        pass  # the keypair was loaded before the heartbeat (start_reporter)

    def run_once(self) -> dict | None:
        config, log = self.runtime.config, self.runtime.log
        if not config.oko_api_base_url:
            self.failures.failed(
                "telemetry not sent: OKO_API_BASE_URL is not set",
                {"event": "telemetry.disabled"},
            )
            result = {"ok": False, "status": None, "error": "OKO_API_BASE_URL is not set"}
        else:
            body, self.public_key = collect(self.runtime.db, self.public_key)
            outcome = send(
                self.client,
                config.oko_api_base_url,
                str(config.ks_node_report_password),
                body,
                config.report_timeout_seconds,
            )
            result = outcome.as_dict()
            if outcome.ok:
                self.failures.succeeded(
                    "telemetry sent",
                    {
                        "event": "telemetry.sent",
                        "status": outcome.status,
                        "key_share_count": outcome.key_share_count,
                    },
                )
            else:
                self.failures.failed(
                    "telemetry failed",
                    {"event": "telemetry.failed", "status": outcome.status, "error": outcome.error},
                )
        try:
            with self.runtime.db.transaction() as cur:
                heartbeats.beat(cur, self.runtime.config.effective_node_id, PROGRAM, result)
        except Exception as exc:  # noqa: BLE001 - recorded next time
            log.warning(
                "cannot record telemetry result",
                extra={"event": "heartbeat.failed", "error": str(exc)[:200]},
            )
        return result


def start_reporter(runtime: Runtime, _stop: StopFlag) -> Reporter:
    try:
        pair, _ = keypairs.load_or_create(runtime.db, runtime.cipher)
    except keypairs.KeypairError as exc:
        fail(str(exc))
        raise
    return Reporter(runtime, pair.public_key_hex)


def main() -> None:
    run(
        PROGRAM,
        start_reporter,
        every=lambda config: config.report_interval_seconds,
        started=lambda config: {"interval_seconds": config.report_interval_seconds},
    )
