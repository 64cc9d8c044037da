"""What an anonymous caller may see of /health, /metrics and the backup history.

Anonymous callers get the reference's answers and the node's state, never the
host's details: no node id (host name and home path), folder, pid, program
state, database error text or count. The operator sees everything with
OPS_TOKEN (services/api/ops/token.py).
"""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry
from prometheus_client.core import GaugeMetricFamily

from services.api.ops.health import assess
from services.api.ops.metrics import status_gauges

# The history entry's meta keys of the seed and the reference (spec §5.11,
# §9.2): {dump_size, dump_duration} on a dump, {error} on a failure. Ours adds
# sha256, verified, tables (row counts), node_id and reason: operator-only.
SEED_META_KEYS = ("dump_size", "dump_duration", "error")


def public_health(body: dict[str, Any]) -> dict[str, Any]:
    """/health for anonymous callers: the status and each reason's name once
    (a reason's detail may name a folder, a program or a database host)."""
    names: list[str] = []
    for reason in body["reasons"]:
        if reason["reason"] not in names:
            names.append(reason["reason"])
    return {"status": body["status"], "reasons": [{"reason": name} for name in names]}


def public_history_row(row: dict[str, Any]) -> dict[str, Any]:
    """A backup history entry with the seed's meta keys only, and of a
    failure's error text its kind (up to the first colon): what follows is
    pg_dump's own output or an OS error, which may name the database host,
    port, user or a path."""
    meta = row.get("meta")
    if isinstance(meta, dict):
        meta = {key: meta[key] for key in SEED_META_KEYS if key in meta}
        if isinstance(meta.get("error"), str):
            meta["error"] = meta["error"].split(":", 1)[0]
    return {**row, "meta": meta}


class PublicCollector:
    """The gauges anonymous /metrics carries when no OPS_TOKEN is set: what
    anonymous /health says (status and reason names) and nothing else — no
    labels naming the host, no counts, no per-process series."""

    def __init__(self, ctx):
        self.ctx = ctx

    def collect(self):
        health = assess(self.ctx)
        up = GaugeMetricFamily("ksnode_db_up", "1 when the database answered this scrape")
        up.add_metric([], 0 if health["status"] == "down" else 1)
        yield up
        yield from status_gauges(health)


def public_registry(ctx) -> CollectorRegistry:
    registry = CollectorRegistry()
    registry.register(PublicCollector(ctx))
    return registry
