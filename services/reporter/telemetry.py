"""One telemetry report to the Oko API (spec §10)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import requests

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
    session: requests.Session, base_url: str, password: str, body: dict[str, Any], timeout: float
) -> ReportResult:
    count = body["key_share_count"]
    try:
        # Never follow a redirect: requests would resend X-KS-NODE-PASSWORD to
        # wherever Location points (a 307 keeps method, body and our header).
        # A 3xx is a failed report with its status, like any non-2xx.
        response = session.post(
            telemetry_url(base_url),
            json=body,
            timeout=timeout,
            headers={PASSWORD_HEADER: password},
            allow_redirects=False,
        )
    except requests.RequestException as exc:
        return ReportResult(False, None, count, f"{type(exc).__name__}: request failed")
    if 200 <= response.status_code < 300:
        return ReportResult(True, response.status_code, count, None)
    return ReportResult(
        False,
        response.status_code,
        count,
        f"Telemetry response contains error: {response.status_code} {response.reason}",
    )
