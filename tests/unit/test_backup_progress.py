"""Progress of long work: the callback sees the dump grow, the log gets at
most one progress line per 10 s, and a terminal gets a bar when the total is
known."""

from __future__ import annotations

import io
import logging
from dataclasses import replace

from shared.backup.dump import dump_database
from shared.backup.pgtools import PgTools
from shared.backup.progress import LogProgress, TerminalProgress, describe
from tests.support.backup_helpers import REAL_TOOLS, fake_pg_dump


def test_dump_reports_growing_bytes_while_pg_dump_runs(config, dump_dir, tmp_path):
    slow = fake_pg_dump(tmp_path, f'sleep 1.2; exec {REAL_TOOLS.pg_dump} "$@"')
    seen = []
    dump_database(
        replace(config, dump_dir=dump_dir),
        PgTools(slow, REAL_TOOLS.pg_restore, 18),
        dump_dir,
        progress=lambda phase, done, total, elapsed: seen.append((phase, done, total, elapsed)),
    )
    assert len(seen) >= 2 and all(p == "dump" and t is None for p, _, t, _ in seen)
    assert seen[-1][1] > 0 and [s[3] for s in seen] == sorted(s[3] for s in seen)


def test_log_lines_at_most_every_ten_seconds(caplog):
    log = logging.getLogger("test.progress")
    progress = LogProgress(log)
    progress._last -= 11  # as if the work had started 11 s ago
    with caplog.at_level(logging.INFO, logger="test.progress"):
        for second in range(11, 31):
            progress("dump", second * 1000, None, float(second))
    lines = [r for r in caplog.records if getattr(r, "event", "") == "backup.progress"]
    assert len(lines) == 1  # the calls came within a moment: one line, not twenty


class FakeTty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_terminal_shows_a_bar_when_the_total_is_known():
    stream = FakeTty()
    progress = TerminalProgress(logging.getLogger("test.progress"), stream)
    progress("restore", 512, 1024, 3.0)
    progress.end()
    text = stream.getvalue()
    assert text.startswith("\r") and "[" + "#" * 12 in text and "50%" in text
    assert "written" in describe("dump", 2048, None, 2.0)
