"""One telemetry report to the Oko API (spec §10)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from services.reporter.oko_client import OkoClient
from shared.db.pool import Database
from shared.store.tables import KEY_SHARES, SERVER_KEYPAIRS

TELEMETRY_PATH = "/tss/v1/ks_node/telemetry"
PASSWORD_HEADER = "X-KS-NODE-PASSWORD"


@dataclass
class ReportResult:
    ok: bool
    status: int | None
    key_share_count: int
    error: str | None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def telemetry_url(base_url: str) -> str:
    # Plain concatenation like the reference (a trailing slash gives "//tss").
    return base_url + TELEMETRY_PATH


def collect(db: Database, fallback_public_key: str) -> tuple[dict[str, Any], str]:
    """The report body and the public key it names.

    The active public key is read on every run, so a rotation is reported
    without a restart (the reference kept the old key until restart).
    """
    public_key = fallback_public_key
    try:
        with db.cursor() as cur:
            cur.execute(f"SELECT count(*) FROM {KEY_SHARES}")
            count = int(cur.fetchone()[0])
            cur.execute(
                f"SELECT public_key FROM {SERVER_KEYPAIRS} WHERE is_active = true"
                " ORDER BY version DESC LIMIT 1"
            )
            row = cur.fetchone()
            if row is not None:
                public_key = bytes(row[0]).hex()
        payload = {"db_status": "OK", "error_msg": None}
    except Exception as exc:  # noqa: BLE001 - a DB error is reported, not raised
        count = -1
        payload = {
            "db_status": "ERROR",
            "error_msg": (str(exc).strip().splitlines() or ["error"])[0],
        }
    body = {"public_key": public_key, "key_share_count": count, "payload": payload}
    return body, public_key


def send(
    client: OkoClient, base_url: str, password: str, body: dict[str, Any], timeout: float
) -> ReportResult:
    count = body["key_share_count"]
    try:
        # Never follows a redirect (OkoClient has no redirect handling): a
        # client that did would resend X-KS-NODE-PASSWORD to wherever
        # Location points. A 3xx is a failed report with its status, like
        # any non-2xx.
        answer = client.post_json(
            telemetry_url(base_url), body, {PASSWORD_HEADER: password}, timeout
        )
    except Exception as exc:  # noqa: BLE001 - any failure is a failed report
        # The class name only: messages may carry the URL (and its user info).
        return ReportResult(False, None, count, f"{type(exc).__name__}: request failed")
    if 200 <= answer.status < 300:
        return ReportResult(True, answer.status, count, None)
    return ReportResult(
        False,
        answer.status,
        count,
        f"Telemetry response contains error: {answer.status} {answer.reason}",
    )
