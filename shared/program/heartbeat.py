"""A daemon thread that refreshes this program's heartbeat row (per node)."""

from __future__ import annotations

import logging
import threading

from shared.config import Config
from shared.db.pool import Database
from shared.store import heartbeats

log = logging.getLogger(__name__)


class HeartbeatThread(threading.Thread):
    def __init__(
        self, db: Database, node_id: str, program: str, interval: float, stop: threading.Event
    ):
        super().__init__(name=f"heartbeat-{program}", daemon=True)
        self.db, self.program, self.interval, self.stop = db, program, interval, stop
        self.node_id = node_id

    def beat_once(self) -> bool:
        try:
            with self.db.transaction() as cur:
                heartbeats.beat(cur, self.node_id, self.program)
            return True
        except Exception as exc:  # noqa: BLE001 - keep beating after DB outages
            log.warning(
                "heartbeat failed", extra={"event": "heartbeat.failed", "error": str(exc)[:200]}
            )
            return False

    def run(self) -> None:
        while not self.stop.wait(self.interval):
            self.beat_once()


def announce_start(db: Database, node_id: str, program: str) -> None:
    with db.transaction() as cur:
        heartbeats.start(cur, node_id, program)


def announce_stop(db: Database, node_id: str, program: str) -> None:
    """Best effort: a program stopping cleanly says so (heartbeats.stop), so
    it shows as not running at once; if the database does not answer, the
    heartbeat ages out as after a crash."""
    try:
        with db.transaction(timeout=5.0) as cur:
            heartbeats.stop(cur, node_id, program)
    except Exception as exc:  # noqa: BLE001 - stopping anyway
        log.warning(
            "could not record the stop",
            extra={"event": "heartbeat.stop_failed", "error": str(exc)[:200]},
        )


def start_heartbeat(
    db: Database, config: Config, program: str, stop: threading.Event
) -> HeartbeatThread:
    """Record that ``program`` started on this node, then beat every
    HEARTBEAT_INTERVAL_SECONDS until ``stop`` is set (join the returned
    thread before ``announce_stop``: a beat clears a recorded stop)."""
    announce_start(db, config.effective_node_id, program)
    beater = HeartbeatThread(
        db, config.effective_node_id, program, config.heartbeat_interval_seconds, stop
    )
    beater.start()
    return beater
