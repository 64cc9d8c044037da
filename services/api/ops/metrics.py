"""Prometheus metrics of the node.

Request counters and latency histograms are recorded per Flask route (the
URL rule, so cardinality stays bounded) and status. Database-derived values
(key shares, last backup, telemetry, heartbeats) are read with one query at
scrape time by ``NodeCollector``.

With several API worker processes, ``enable_multiprocess`` switches
prometheus_client to its multiprocess mode before the workers fork: each
worker writes its samples to a file in a shared folder and a scrape of any
worker aggregates them all. prometheus_client writes those files through
mmap, and a store into a not yet allocated page of a file on a full disk
kills the process with SIGBUS: a disk filled by logs, dumps or the database
would take every API worker down at its first new sample. So the folder is
in memory (/dev/shm) wherever the system has it (``samples_folder``).
"""

from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, values
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector

from services.api.ops.health import PROBE_DB_SECONDS, REASONS, assess
from shared.keys.keycheck import UsageProbe, unbound_counts
from shared.store.tables import KEY_SHARES, PG_DUMPS

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0)
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
SHARED_MEMORY = Path("/dev/shm")


def samples_folder(run_dir: Path, memory: Path = SHARED_MEMORY) -> Path:
    """Where the workers' sample files go: a folder of this node (named after
    its run folder) in ``memory`` when that is a writable folder and ours is
    safe to use there (a 0700 folder owned by us, not a link: /dev/shm is
    shared by every user); else ``run_dir/metrics``."""
    fallback = run_dir / "metrics"
    if not (memory.is_dir() and os.access(memory, os.W_OK | os.X_OK)):
        return fallback
    folder = shared_memory_folder(run_dir, os.getuid(), memory)
    if folder is None:
        return fallback
    try:
        folder.mkdir(mode=0o700)
    except FileExistsError:
        pass
    except OSError:
        return fallback
    try:
        info = folder.lstat()
    except OSError:
        return fallback
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid() or info.st_mode & 0o077:
        return fallback
    return folder


def shared_memory_folder(run_dir: Path, uid: int, memory: Path = SHARED_MEMORY) -> Path | None:
    """The name of the sample folder in ``memory`` of the node whose run folder
    is ``run_dir``, for programs running as ``uid`` (None: the run folder is
    unreadable). Nothing is created."""
    # The folder's identity, not only its path: two containers sharing
    # /dev/shm may each have a /data/run of their own.
    try:
        where = run_dir.resolve()
        info = where.stat()
    except OSError:
        return None
    identity = f"{where}:{info.st_dev}:{info.st_ino}"
    tag = hashlib.sha256(identity.encode()).hexdigest()[:16]
    return memory / f"ksnode-metrics-{uid}-{tag}"


def enable_multiprocess(folder: Path, *, fresh: bool = True) -> None:
    """Call in the parent before forking workers (and before any metric exists).
    ``fresh=False`` on a reload's handover: the old workers still write their
    samples there while they drain."""
    if fresh:
        remove_samples(folder)
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.environ[MULTIPROC_ENV] = str(folder)  # read by prometheus_client when it writes samples
    values.ValueClass = values.MultiProcessValue()


def ensure_samples_folder() -> None:
    """In a new worker, before its first sample: the folder again, should it
    be gone (systemd-logind's RemoveIPC empties /dev/shm of a user who logs
    out; a hand may delete it). Without it the worker could not start."""
    folder = multiprocess_folder()
    if folder is not None:
        Path(folder).mkdir(mode=0o700, parents=True, exist_ok=True)


def remove_samples(folder: Path) -> None:
    """Delete the sample files (the folder stays: samples_folder checked it)."""
    for path in folder.glob("*.db"):
        path.unlink(missing_ok=True)


def multiprocess_folder() -> str | None:
    return os.environ.get(MULTIPROC_ENV) if values.ValueClass is not values.MutexValue else None


class RequestMetrics:
    def __init__(self, registry: CollectorRegistry):
        self.requests = Counter(
            "ksnode_http_requests",
            "HTTP requests handled",
            ["route", "method", "status"],
            registry=registry,
        )
        self.latency = Histogram(
            "ksnode_http_request_duration_seconds",
            "HTTP request latency",
            ["route", "method"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        # Summed over the API's worker processes (multiprocess mode): each
        # counts the reconnects that reached a different server than before.
        self.failovers = Counter(
            "ksnode_db_failovers_seen",
            "reconnects of an API process to a different database server (failovers)",
            registry=registry,
        )

        self._series: dict[tuple[str, str, int], tuple[Any, Any]] = {}

    def failover_seen(self, _old: str, _new: str) -> None:
        self.failovers.inc()

    def observe(self, route: str, method: str, status: int, seconds: float) -> None:
        # The labelled series, found once per (route, method, status): labels()
        # costs more than the increment itself. Routes are the app's rules and
        # statuses the few it answers, so the dict stays small.
        series = self._series.get((route, method, status))
        if series is None:
            series = (
                self.requests.labels(route, method, str(status)),
                self.latency.labels(route, method),
            )
            self._series[(route, method, status)] = series
        series[0].inc()
        series[1].observe(seconds)


NODE_SQL = (
    f"SELECT (SELECT count(*) FROM {KEY_SHARES}),"
    f" (SELECT EXTRACT(EPOCH FROM now() - max(created_at))::float8 FROM {PG_DUMPS} WHERE status = 'COMPLETED'),"
    f" (SELECT status FROM {PG_DUMPS} WHERE status <> 'IN_PROGRESS' ORDER BY created_at DESC LIMIT 1)"
)


class NodeCollector:
    """Gauges computed at scrape time: /health's assessment (heartbeats,
    telemetry and backup state come from it) and one query for the rest.
    With the database away the scrape costs one bounded attempt, not two."""

    def __init__(self, ctx):
        self.ctx = ctx

    def collect(self):
        ctx = self.ctx
        health = assess(ctx)
        up = GaugeMetricFamily("ksnode_db_up", "1 when the database answered this scrape")
        pool = GaugeMetricFamily(
            "ksnode_db_pool_connections_in_use",
            "connections in use in the scraped API process",
            labels=["pid"],
        )
        pool.add_metric([str(os.getpid())], ctx.db.in_use)
        row = None
        if health["status"] != "down":
            try:
                with ctx.db.cursor(timeout=PROBE_DB_SECONDS) as cur:
                    cur.execute(NODE_SQL)
                    row = cur.fetchone()
            except Exception:  # noqa: BLE001 - a scrape reports the outage instead of failing
                row = None
        up.add_metric([], 0 if row is None else 1)
        yield up
        yield pool
        if row is None:
            yield from health_gauges(health)
            return
        shares, backup_age, backup_status = row
        primary = GaugeMetricFamily(
            "ksnode_db_primary",
            "the database server (address:port) this scrape's read-write session is on",
            labels=["server"],
        )
        server = getattr(ctx.db, "server", None)
        if server is not None:
            primary.add_metric([server], 1)
        yield primary
        yield GaugeMetricFamily("ksnode_key_shares", "key shares stored", value=shares)
        age = GaugeMetricFamily(
            "ksnode_last_backup_age_seconds",
            "seconds since the newest completed backup (absent: none yet)",
        )
        if backup_age is not None:
            age.add_metric([], backup_age)
        yield age
        result = GaugeMetricFamily(
            "ksnode_last_backup_ok", "1 if the newest finished backup completed"
        )
        if backup_status is not None:
            result.add_metric([], 1 if backup_status in ("COMPLETED", "DELETED") else 0)
        yield result
        programs = health["programs"]
        telemetry = (programs.get("reporter") or {}).get("last_result")
        sent = GaugeMetricFamily(
            "ksnode_telemetry_last_ok", "1 if the last telemetry report was accepted"
        )
        if isinstance(telemetry, dict):
            sent.add_metric([], 1 if telemetry.get("ok") else 0)
        yield sent
        heartbeat = GaugeMetricFamily(
            "ksnode_heartbeat_age_seconds",
            "seconds since each of this node's programs last beat",
            labels=["node_id", "program"],
        )
        for program, info in sorted(programs.items()):
            if info["heartbeat_age_seconds"] is not None:
                heartbeat.add_metric(
                    [ctx.config.effective_node_id, program], info["heartbeat_age_seconds"]
                )
        yield heartbeat
        yield from health_gauges(health)
        yield from key_usage_gauge(ctx)


STATUS_VALUE = {"ok": 0, "degraded": 1, "down": 2}


def status_gauges(health: dict):
    """/health's status and reasons as gauges: one series per reason (0/1), so
    an alert is one line. The anonymous view (public_views.py) shows these too."""
    status = GaugeMetricFamily(
        "ksnode_health_status", "0 ok, 1 degraded, 2 down (as GET /health says)"
    )
    status.add_metric([], STATUS_VALUE[health["status"]])
    yield status
    named = {reason["reason"] for reason in health["reasons"]}
    reason = GaugeMetricFamily(
        "ksnode_health_reason", "1 while /health names this reason", labels=["reason"]
    )
    for name in REASONS:
        reason.add_metric([name], 1 if name in named else 0)
    yield reason


def health_gauges(health: dict):
    """/health as gauges: status, reasons, then the details."""
    yield from status_gauges(health)
    disk = GaugeMetricFamily(
        "ksnode_disk_free_bytes", "free bytes where the node writes", labels=["folder"]
    )
    for name, folder in health["disk"].items():
        if folder["free_bytes"] is not None:
            disk.add_metric([name], folder["free_bytes"])
    yield disk
    backup = health.get("backup")
    if backup is None:
        return
    tools = GaugeMetricFamily("ksnode_backup_tools_usable", "1 if pg_dump/pg_restore are usable")
    tools.add_metric([], 0 if backup["tools_error"] else 1)
    yield tools
    drill = GaugeMetricFamily("ksnode_last_drill_ok", "1 if the newest restore drill passed")
    if backup["last_drill"] is not None:
        drill.add_metric([], 1 if backup["last_drill"]["ok"] else 0)
    yield drill
    space = backup["dump_dir"]
    free = GaugeMetricFamily("ksnode_dump_dir_free_bytes", "free bytes in DUMP_DIR")
    if space["free_bytes"] is not None:
        free.add_metric([], space["free_bytes"])
    yield free
    needed = GaugeMetricFamily("ksnode_last_dump_size_bytes", "size of the newest completed dump")
    if space["needed_bytes"] is not None:
        needed.add_metric([], space["needed_bytes"])
    yield needed


def key_usage_gauge(ctx):
    """Encrypted values per table, format and key id (keycheck.py); ``secret``
    is current, previous, unknown, or unnamed for ksn1/legacy values."""
    probe = ctx.extras.setdefault("key_usage", UsageProbe())
    try:
        usage = probe.read(ctx.db)
    except Exception:  # noqa: BLE001 - ksnode_db_up already says the database is away
        return
    gauge = GaugeMetricFamily(
        "ksnode_encrypted_values",
        "stored encrypted values per table, format and key id",
        labels=["table", "format", "key_id", "secret"],
    )
    for u in usage:
        gauge.add_metric([u.column, u.format, u.key_id, u.state(ctx.cipher)], u.rows)
    yield gauge
    unbound = GaugeMetricFamily(
        "ksnode_unbound_sealed_values",
        "stored encrypted values not sealed to their owner (legacy, ksn1, ksn2); "
        "ksnode reencrypt binds them",
        labels=["table"],
    )
    for table, rows in unbound_counts(usage).items():
        unbound.add_metric([table], rows)
    yield unbound


def scrape_registry(app_registry: CollectorRegistry, ctx) -> CollectorRegistry:
    """What a scrape returns: all workers' samples in multiprocess mode."""
    folder = multiprocess_folder()
    if folder is None:
        return app_registry
    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=folder)
    registry.register(NodeCollector(ctx))
    return registry
