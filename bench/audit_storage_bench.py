"""Where should audit records live? Measures both candidates on this machine.

    python bench/audit_storage_bench.py [--durable 500] [--reads 50000] [--users 2000]

* ``table``: the ``ksn_audit`` table as ksnode writes it (shared/audit/trail.py:
  advisory lock, read the head, seal, insert, commit), in a temporary
  embedded Postgres (synchronous_commit on, its default).
* ``files``: append-only chained lines (the table's text form) in a folder (what LOG_DIR would hold), a
  faithful sketch of the alternative: an exclusive flock per append so the
  API's worker processes share one chain, the head read back from the file's
  tail when another process wrote last, O_APPEND writes, fsync for a durable
  record.

Printed per candidate: the latency of one durable append (admin and write
events, before the answer), the cost per record of batched reads (queue +
flush, what a share read pays), bytes per record on disk, and the time of
`audit find` for one user among all records.
"""

from __future__ import annotations

import argparse
import fcntl
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from shared.audit.records import GENESIS, AuditKey, Record, seal_chain  # noqa: E402
from shared.audit.trail import AuditTrail, record_once  # noqa: E402
from shared.config import load_config  # noqa: E402
from shared.db.embedded import EmbeddedPostgres  # noqa: E402
from shared.db.migrations import run_migrations  # noqa: E402
from shared.db.pool import Database  # noqa: E402
from shared.store import audit as store  # noqa: E402


def sample_record(key: AuditKey, i: int, users: int) -> Record:
    return Record(
        event="keyshare.v1.get",
        outcome="ok",
        request_id=f"1a2b-{i:x}",
        client="203.0.113.7",
        auth_type="telegram",
        user_ref=key.user_ref(f"telegram_{i % users}"),
        public_keys=("secp256k1:02" + f"{i:064x}",),
    )


class FileTrail:
    """The file candidate: one chained JSON-lines file shared by processes."""

    def __init__(self, folder: Path, key: AuditKey):
        self.path = folder / "audit.jsonl"
        self.key = key
        self.fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        self.known: tuple[int, int, str] | None = None  # (file size, seq, hash) we wrote last

    def _head(self) -> tuple[int, str] | None:
        size = os.fstat(self.fd).st_size
        if self.known is not None and self.known[0] == size:
            return self.known[1], self.known[2]
        if size == 0:
            return None
        with self.path.open("rb") as handle:  # another process wrote last: read its tail
            handle.seek(max(0, size - 4096))
            last = handle.read().decode().splitlines()[-1].split("\t")
        return int(last[0]), last[-1]

    def append(self, records: list[Record], *, durable: bool) -> None:
        fcntl.flock(self.fd, fcntl.LOCK_EX)
        try:
            sealed = seal_chain(self.key, self._head(), records)
            # The same text form as the table's (what the hash covers), one per line.
            data = "".join(f"{s.text}\t{s.hash}\n" for s in sealed).encode()
            os.write(self.fd, data)
            if durable:
                os.fsync(self.fd)
            self.known = (os.fstat(self.fd).st_size, sealed[-1].seq, sealed[-1].hash)
        finally:
            fcntl.flock(self.fd, fcntl.LOCK_UN)

    def find(self, user_ref: str) -> int:
        found = 0
        with self.path.open("rb") as handle:
            needle = user_ref.encode()
            for line in handle:
                if needle in line and line.split(b"\t")[7] == needle:
                    found += 1
        return found


def percentiles(values: list[float]) -> str:
    values = sorted(values)
    p50 = values[len(values) // 2] * 1000
    p99 = values[min(len(values) - 1, int(len(values) * 0.99))] * 1000
    return f"mean {statistics.mean(values) * 1000:.2f} ms, p50 {p50:.2f} ms, p99 {p99:.2f} ms"


def bench_table(db: Database, key: AuditKey, args) -> dict[str, str]:
    out = {}
    lat = []
    for i in range(args.durable):
        started = time.perf_counter()
        record_once(db, key, sample_record(key, i, args.users))
        lat.append(time.perf_counter() - started)
    out["durable append"] = percentiles(lat)
    trail = AuditTrail(db, key, retention_days=0)
    started = time.perf_counter()
    queue_cpu = time.process_time()
    flushes = []
    for i in range(args.reads):
        trail.record(sample_record(key, i, args.users))
        if len(trail._pending) >= args.batch:
            t = time.perf_counter()
            trail.flush()
            flushes.append(time.perf_counter() - t)
    trail.flush()
    elapsed = time.perf_counter() - started
    cpu = time.process_time() - queue_cpu
    out["batched reads"] = (
        f"{elapsed / args.reads * 1e6:.1f} us/record wall, {cpu / args.reads * 1e6:.1f} us/record "
        f"CPU in the API process, flush of {args.batch}: {statistics.mean(flushes) * 1000:.1f} ms"
    )
    trail._stop.set()
    with db.cursor() as cur:
        cur.execute(f"SELECT pg_total_relation_size('{store.AUDIT}')")
        size = cur.fetchone()[0]
        rows = store.count(cur)
    out["bytes/record"] = f"{size / rows:.0f} (table + indexes, {rows} records)"
    ref = key.user_ref("telegram_7")
    t = time.perf_counter()
    with db.cursor() as cur:
        found = len(store.by_user(cur, ref))
    out["find one user"] = f"{(time.perf_counter() - t) * 1000:.1f} ms ({found} records, index)"
    return out


def bench_files(folder: Path, key: AuditKey, args) -> dict[str, str]:
    out = {}
    trail = FileTrail(folder, key)
    lat = []
    for i in range(args.durable):
        started = time.perf_counter()
        trail.append([sample_record(key, i, args.users)], durable=True)
        lat.append(time.perf_counter() - started)
    out["durable append"] = percentiles(lat)
    started = time.perf_counter()
    cpu0 = time.process_time()
    pending: list[Record] = []
    for i in range(args.reads):
        pending.append(sample_record(key, i, args.users))
        if len(pending) >= args.batch:
            trail.append(pending, durable=False)
            pending = []
    if pending:
        trail.append(pending, durable=False)
    elapsed = time.perf_counter() - started
    cpu = time.process_time() - cpu0
    out["batched reads"] = (
        f"{elapsed / args.reads * 1e6:.1f} us/record wall, {cpu / args.reads * 1e6:.1f} us/record "
        "CPU in the API process"
    )
    rows = args.durable + args.reads
    out["bytes/record"] = f"{trail.path.stat().st_size / rows:.0f} ({rows} records)"
    ref = key.user_ref("telegram_7")
    t = time.perf_counter()
    found = trail.find(ref)
    out["find one user"] = f"{(time.perf_counter() - t) * 1000:.1f} ms ({found} records, full scan)"
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--durable", type=int, default=500)
    parser.add_argument("--reads", type=int, default=50_000)
    parser.add_argument("--batch", type=int, default=500, help="reads per flush (~0.5 s of load)")
    parser.add_argument("--users", type=int, default=2000)
    args = parser.parse_args()
    assert GENESIS
    with tempfile.TemporaryDirectory(prefix="ksnode-audit-bench-") as tmp:
        root = Path(tmp)
        server = EmbeddedPostgres(root / "pg_data")
        running = server.start()
        try:
            server.create_database("bench")
            secret = root / "secret"
            secret.write_text("bench-secret")
            config = load_config(
                {
                    "DB_HOST": running.host,
                    "DB_PORT": str(running.port),
                    "DB_PASSWORD": running.password,
                    "DB_NAME": "bench",
                    "ENCRYPTION_SECRET_PATH": str(secret),
                    "KSNODE_HOME": str(root / "home"),
                }
            )
            run_migrations(config)
            db = Database(config, maxconn=4)
            key = AuditKey("bench-secret")
            results = {"table (ksn_audit)": bench_table(db, key, args)}
            db.close()
            folder = root / "logs" / "audit"
            folder.mkdir(parents=True)
            results["files (LOG_DIR)"] = bench_files(folder, key, args)
        finally:
            server.stop()
    print(f"{args.durable} durable appends, {args.reads} batched reads (batches of {args.batch})")
    for name, figures in results.items():
        print(f"\n{name}")
        for what, value in figures.items():
            print(f"  {what:<16} {value}")


if __name__ == "__main__":
    main()
