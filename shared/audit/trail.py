"""Writing the audit trail: durable events at once, reads in batches.

``record(r, durable=True)`` (admin calls, registrations, reshares, restores,
key rotation) returns only once the record is committed, so the caller
answers after it. ``record(r)`` (share reads, checks) queues the record; a
background thread commits the queue every ``FLUSH_SECONDS``, so a crash
loses at most that much of reads. A durable write commits the queued reads
first, so the trail keeps this process's order.

When the database refuses a write, the records stay queued (at most
``MAX_PENDING``; beyond that the oldest are dropped and counted) and are
retried; a durable record is also written to the log at once, so an
acknowledged admin action always leaves a trace. The same thread deletes
records older than the retention period, leaving an ``audit.retention``
record that says up to which seq it deleted, so ``audit verify`` can tell
retention from tampering.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import asdict
from typing import Any

import psycopg2

from shared.audit.records import (
    RETENTION_EVENT,
    AuditKey,
    AuditKeyring,
    Record,
    Sealed,
    seal_chain,
    utc_now,
)
from shared.config import Config
from shared.crypto.secretfiles import load_secret
from shared.db.pool import Database
from shared.infra.logthrottle import LogThrottle
from shared.store import audit as store

log = logging.getLogger("audit")

FLUSH_SECONDS = 0.5  # at most this much of read records is lost on a crash
MAX_PENDING = 100_000
RETENTION_EVERY_SECONDS = 3600.0
RETENTION_BATCH = 10_000
# Records built or sealed per turn of ``cpu_section`` (the API's gate): a
# second's batch of reads at full load is hundreds of records, and holding
# the gate for all of them at once put ~10 ms into a request's latency.
CPU_CHUNK = 64


class AuditTrail:
    """The trail of one process (thread-safe)."""

    def __init__(
        self,
        db: Database,
        key: AuditKey,
        *,
        retention_days: float = 90.0,
        builder: Callable[[Any], Record] | None = None,
        cpu_section: Callable[[], AbstractContextManager[Any]] = nullcontext,
    ):
        self.db = db
        self.key = key
        # Turns what a caller queued (anything but a Record) into a Record, in
        # this trail's thread: the API queues a read's raw facts, cheaply.
        self.builder = builder
        # Wraps the thread's Python work on a batch (the API passes its gate,
        # so a batch runs between requests instead of contending with one).
        self.cpu_section = cpu_section
        self.retention_days = retention_days
        self._pending: deque[Record] = deque()
        self._pending_lock = threading.Lock()
        self._write_lock = threading.Lock()  # one append at a time keeps our order
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._next_retention = 0.0
        self._enqueued = 0  # records ever queued
        self._committed = 0  # every record up to this count is stored (or was dropped)
        self.dropped = 0
        self.failures = 0
        self._staged_log = LogThrottle(60.0)
        # Whoever can write ksn_audit_staged can write a million rows: one
        # error line a second (each claim stays in the chain's record).
        self._refused_log = LogThrottle()

    # -- recording ---------------------------------------------------------------
    def build(self, item: Any) -> Record:
        if isinstance(item, Record):
            return item
        if self.builder is None:
            raise TypeError("this trail only takes Record objects")
        return self.builder(item)

    def record(self, record: Any, *, durable: bool = False) -> None:
        """Queue ``record`` (a Record, or what ``builder`` takes); with
        ``durable`` (a Record), return once it is committed."""
        with self._pending_lock:
            if len(self._pending) >= MAX_PENDING:
                self._pending.popleft()
                self.dropped += 1
            self._pending.append(record)
            self._enqueued += 1
            ticket = self._enqueued
        if durable and not self._commit_through(ticket):
            # Never an acknowledged action without a trace: the log has it now,
            # the table will once the database takes it (it stays queued).
            log.error(
                "audit record not yet stored, kept for retry",
                extra={"event": "audit.write_failed", "audit": _loggable(record)},
            )
        self._ensure_thread()

    def flush(self) -> bool:
        """Commit the queued records now, and seal the staged ones (records
        committed with their write, shared/store/audit.py) into the chain;
        False if some stay queued (database down)."""
        with self._write_lock:
            return self._append(claim_staged=True)

    def _commit_through(self, ticket: int) -> bool:
        """Commit every record up to the ``ticket``-th queued. Records queued
        by other threads meanwhile go in the same transaction (group commit):
        a thread that finds its record already committed returns at once."""
        with self._write_lock:
            if self._committed >= ticket:
                return True
            return self._append()

    def _append(self, *, claim_staged: bool = False) -> bool:
        """Commit the whole queue in one transaction (caller holds _write_lock);
        with ``claim_staged``, the staged records too, in time order with it."""
        with self._pending_lock:
            queued = list(self._pending)
            self._pending.clear()
            upto = self._enqueued
        if claim_staged and not queued:
            claim_staged = self._staged_waiting()
        if not queued and not claim_staged:
            self._committed = upto
            return True
        batch = self._in_cpu_chunks(self._built, queued)
        try:
            with self.db.connection() as conn:
                store.append(
                    conn,
                    lambda head, staged: self._seal(
                        head, _in_time_order(batch, self._in_cpu_chunks(self._checked, staged))
                    ),
                    claim_staged=claim_staged,
                )
        except psycopg2.DataError:
            # The database refuses a row itself (text it cannot store):
            # retrying the batch would block the trail for good. Store the
            # others one by one; the refused one is kept in the log only.
            self.failures += 1
            if not self._append_one_by_one(batch):
                return False
        except Exception as exc:  # noqa: BLE001 - any failure: keep, retry, report
            self.failures += 1
            log.warning(
                "audit write failed", extra={"event": "audit.db_error", "error": type(exc).__name__}
            )
            with self._pending_lock:
                self._pending.extendleft(reversed(batch))
            return False
        self._committed = upto
        return True

    def _in_cpu_chunks(
        self, work: Callable[[list[Any]], list[Record]], items: list[Any]
    ) -> list[Record]:
        """``work`` over ``items``, CPU_CHUNK at a time, each inside
        ``cpu_section`` (the API's gate): never all of a busy flush at once."""
        done: list[Record] = []
        for start in range(0, len(items), CPU_CHUNK):
            with self.cpu_section():
                done += work(items[start : start + CPU_CHUNK])
        return done

    def _checked(self, staged: list[tuple[Record, str | None]]) -> list[Record]:
        """The staged records that carry this node's MAC; for any other (written
        into the table by someone holding only the database, or staged under
        another secret), a record saying so in its place, and an error line
        (at most one a second: the chain's records name every claim)."""
        records = []
        for record, mac in staged:
            if self.key.staged_intact(record, mac):
                records.append(record)
                continue
            claimed = {"event": record.event[:64], "request_id": (record.request_id or "")[:64]}
            left_out = self._refused_log.allow("refused")
            if left_out is not None:
                log.error(
                    "audit: a staged record does not carry this node's MAC; not sealed as written",
                    extra={
                        "event": store.STAGED_REFUSED_EVENT,
                        "claimed_event": claimed["event"],
                        "claimed_request_id": claimed["request_id"],
                        "left_out": left_out,  # like lines of the last second, not written
                    },
                )
            records.append(
                Record(
                    store.STAGED_REFUSED_EVENT,
                    "refused",
                    client="local",
                    auth_type="local",
                    detail=claimed,
                )
            )
        return records

    def _staged_waiting(self) -> bool:
        try:
            with self.db.cursor() as cur:
                return store.staged_waiting(cur)
        except Exception as exc:  # noqa: BLE001 - looked at again on the next flush
            left_out = self._staged_log.allow("staged")
            if left_out is not None:  # every flush would say it during an outage
                log.warning(
                    "audit staged records unreadable",
                    extra={
                        "event": "audit.db_error",
                        "error": type(exc).__name__,
                        "left_out": left_out,
                    },
                )
            return False

    def _seal(self, head: tuple[int, str] | None, batch: list[Record]) -> list[Sealed]:
        sealed: list[Sealed] = []
        for start in range(0, len(batch), CPU_CHUNK):
            with self.cpu_section():
                part = seal_chain(self.key, head, batch[start : start + CPU_CHUNK])
            sealed += part
            head = (part[-1].seq, part[-1].hash)
        return sealed

    def _append_one_by_one(self, batch: list[Record]) -> bool:
        for index, record in enumerate(batch):
            try:
                with self.db.connection() as conn:

                    def seal_one(
                        head: tuple[int, str] | None,
                        _staged: list[tuple[Record, str | None]],
                        r: Record = record,
                    ) -> list[Sealed]:
                        return seal_chain(self.key, head, [r])

                    store.append(conn, seal_one)
            except psycopg2.DataError as exc:
                log.error(
                    "audit record refused by the database, kept in the log only",
                    extra={
                        "event": "audit.refused",
                        "audit": _loggable(record),
                        "error": type(exc).__name__,
                    },
                )
            except Exception:  # noqa: BLE001 - the database went away: retry the rest later
                with self._pending_lock:
                    self._pending.extendleft(reversed(batch[index:]))
                return False
        return True

    def _built(self, queued: list[Any]) -> list[Record]:
        batch = []
        for item in queued:
            try:
                batch.append(self.build(item))
            except Exception:  # noqa: BLE001 - one bad item must not stop the trail
                self.dropped += 1
                log.exception("audit record could not be built", extra={"event": "audit.bug"})
        return batch

    # -- background thread ---------------------------------------------------------
    def _ensure_thread(self) -> None:
        if self._thread is None:
            with self._pending_lock:
                if self._thread is None:
                    self._thread = threading.Thread(
                        target=self._run, name="audit-flush", daemon=True
                    )
                    self._thread.start()

    def start(self) -> AuditTrail:
        self._ensure_thread()
        return self

    def _run(self) -> None:
        while not self._stop.wait(FLUSH_SECONDS):
            if self.db.closed:  # its process is stopping without close(): nothing to write to
                break
            self.flush()
            if self.retention_days > 0 and time.monotonic() >= self._next_retention:
                self._next_retention = time.monotonic() + RETENTION_EVERY_SECONDS
                try:
                    self.apply_retention()
                except Exception as exc:  # noqa: BLE001 - retried next hour
                    log.warning(
                        "audit retention failed",
                        extra={"event": "audit.retention_failed", "error": type(exc).__name__},
                    )

    def close(self) -> None:
        """Stop the thread and commit what is queued (on SIGTERM)."""
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=5)
        if not self.flush():
            with self._pending_lock:
                lost = len(self._pending)
            log.error(
                "audit records lost at shutdown: database unavailable",
                extra={"event": "audit.lost", "records": lost},
            )

    # -- retention -------------------------------------------------------------------
    def apply_retention(self, now: dt.datetime | None = None) -> int:
        """Delete records older than the retention period; returns how many."""
        cutoff = (now or utc_now()) - dt.timedelta(days=self.retention_days)
        total = 0
        while True:
            with self._write_lock, self.db.transaction() as cur:
                store.lock_chain(cur)
                last = store.head(cur)
                deleted, through = store.retention_cut(cur, cutoff, RETENTION_BATCH)
                if deleted:
                    marker = Record(
                        RETENTION_EVENT,
                        "ok",
                        detail={"deleted": deleted, "deleted_through": through},
                        client="local",
                        auth_type="local",
                    )
                    store.insert(cur, seal_chain(self.key, last, [marker]))
            total += deleted
            if deleted < RETENTION_BATCH:
                break
        if total:
            log.info(
                "old audit records deleted", extra={"event": "audit.retention", "deleted": total}
            )
        return total


def _in_time_order(batch: list[Record], staged: list[Record]) -> list[Record]:
    """This process's queue and the staged records of any process, merged by
    time (a staged registration goes before the reads that came after it)."""
    if not staged:
        return batch
    return sorted(batch + staged, key=lambda record: record.at)


def _loggable(record: Record) -> dict[str, object]:
    fields = asdict(record)
    fields["at"] = record.at.isoformat()
    fields["public_keys"] = list(record.public_keys)
    return fields


def record_once(db: Database, key: AuditKey, record: Record) -> Sealed:
    """Append one record now (command-line events); raises on failure."""
    with db.connection() as conn:
        (sealed,) = store.append(conn, lambda head, _staged: seal_chain(key, head, [record]))
    return sealed


def node_key(config: Config) -> AuditKey:
    """This node's audit key (seals new records), derived from its current
    encryption secret."""
    return AuditKey(load_secret(config.effective_secret_path))


def node_keys(config: Config) -> AuditKeyring:
    """The keys of every configured secret, current and previous (checking
    and searching the trail across a rotation)."""
    return AuditKeyring.from_secrets(
        load_secret(config.effective_secret_path),
        [load_secret(path) for path in config.encryption_secret_previous_paths],
    )
