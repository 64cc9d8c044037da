"""A daemon thread that refreshes this program's row in ksn_heartbeats."""

from __future__ import annotations

import logging
import threading

from shared.db import Database
from shared.store import heartbeats

log = logging.getLogger(__name__)


class HeartbeatThread(threading.Thread):
    def __init__(self, db: Database, program: str, interval: float, stop: threading.Event):
        super().__init__(name=f"heartbeat-{program}", daemon=True)
        self.db, self.program, self.interval, self.stop = db, program, interval, stop

    def beat_once(self) -> bool:
        try:
            with self.db.transaction() as cur:
                heartbeats.beat(cur, self.program)
            return True
        except Exception as exc:  # noqa: BLE001 - keep beating after DB outages
            log.warning(
                "heartbeat failed", extra={"event": "heartbeat.failed", "error": str(exc)[:200]}
            )
            return False

    def run(self) -> None:
        while not self.stop.wait(self.interval):
            self.beat_once()


def announce_start(db: Database, program: str) -> None:
    with db.transaction() as cur:
        heartbeats.start(cur, program)
