"""The key tables' row counts and checksums, read in the very snapshot
pg_dump dumps: a repeatable-read transaction exports its snapshot, pg_dump
gets it with --snapshot, and the summary is computed on a thread while
pg_dump runs (it costs about as much as the dump; in parallel it mostly
hides behind it)."""

from __future__ import annotations

import threading
from typing import Any

from shared.config import Config
from shared.db.pool import connect
from shared.store import contents


class SnapshotSummary:
    def __init__(self, config: Config, dbname: str):
        self.conn = connect(config, dbname)
        try:
            with self.conn.cursor() as cur:
                self.snapshot_id = contents.export_snapshot(cur)
        except BaseException:
            self.conn.close()
            raise
        self._tables: dict[str, dict[str, Any]] | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._compute, name="dump-summary", daemon=True)

    def _compute(self) -> None:
        try:
            with self.conn.cursor() as cur:
                self._tables = contents.summarize(cur)
        except BaseException as exc:  # noqa: BLE001 - re-raised in result()
            self._error = exc

    def start(self) -> SnapshotSummary:
        self._thread.start()
        return self

    def result(self) -> dict[str, dict[str, Any]]:
        """Wait for the summary (the snapshot stays exported until then)."""
        self._thread.join()
        if self._error is not None:
            raise self._error
        assert self._tables is not None
        return self._tables

    def close(self) -> None:
        if self._thread.is_alive():
            self._thread.join()
        self.conn.close()
