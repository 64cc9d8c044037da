"""A program that stops cleanly records it in its heartbeat row: /health and
the admin backup routes see it as not running at once, not once the beat has
aged out. Only its own row: a successor already started keeps running."""

from __future__ import annotations

from services.api.ops.health import is_running
from shared.store import heartbeats

NODE = "node-heartbeat-stop"


def beat_of(db, program: str) -> dict:
    with db.cursor() as cur:
        return heartbeats.all_beats(cur, NODE)[program]


def test_a_clean_stop_is_not_running_at_once_and_a_start_or_beat_clears_it(db):
    with db.cursor() as cur:
        heartbeats.start(cur, NODE, "reporter")
    assert is_running(beat_of(db, "reporter"), 10.0)
    with db.cursor() as cur:
        heartbeats.stop(cur, NODE, "reporter")
    stopped = beat_of(db, "reporter")
    assert stopped["stopped_at"] is not None and stopped["age_seconds"] < 5
    assert not is_running(stopped, 10.0)
    with db.cursor() as cur:
        heartbeats.start(cur, NODE, "reporter")
    assert is_running(beat_of(db, "reporter"), 10.0)
    with db.cursor() as cur:
        heartbeats.stop(cur, NODE, "reporter")
        heartbeats.beat(cur, NODE, "reporter", {"sent": 1})
    assert is_running(beat_of(db, "reporter"), 10.0)


def test_the_stop_of_a_process_whose_successor_started_changes_nothing(db):
    with db.cursor() as cur:
        heartbeats.start(cur, NODE, "backup_worker")
        # a successor (another pid) started before this process recorded its stop
        cur.execute(
            "UPDATE ksn_node_heartbeats SET pid = pid + 1 WHERE node_id = %s AND program = %s",
            (NODE, "backup_worker"),
        )
        heartbeats.stop(cur, NODE, "backup_worker")
    assert beat_of(db, "backup_worker")["stopped_at"] is None
