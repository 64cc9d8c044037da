"""Following the programs' capture files like `tail -F -n 0`: new lines only,
across supervisord's rotation and truncation, files that appear later, and
an unterminated last line at the end."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

from shared.node.logfollow import MAX_LINE, FollowFolder


class Collected:
    def __init__(self):
        self.lines: list[bytes] = []
        self.lock = threading.Lock()

    def __call__(self, line: bytes) -> None:
        with self.lock:
            self.lines.append(line)

    def wait_for(self, line: bytes, timeout: float = 10) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if line in self.lines:
                    return True
            time.sleep(0.05)
        return False


def append(path: Path, data: bytes) -> None:
    with path.open("ab") as f:
        f.write(data)


def follow(folder: Path) -> tuple[FollowFolder, Collected]:
    got = Collected()
    return FollowFolder(folder, interval=0.05).start(got), got


def test_lines_written_before_the_start_are_not_repeated(tmp_path):
    append(tmp_path / "api.log", b"old 1\nold 2\n")
    follower, got = follow(tmp_path)
    append(tmp_path / "api.log", b"new 1\n")
    assert got.wait_for(b"new 1\n")
    follower.stop()
    assert got.lines == [b"new 1\n"]


def test_a_file_that_appears_later_is_read_from_its_start(tmp_path):
    follower, got = follow(tmp_path)
    append(tmp_path / "reporter.log", b"first\n")
    assert got.wait_for(b"first\n")
    follower.stop()


def test_supervisord_own_log_and_other_files_are_not_followed(tmp_path):
    follower, got = follow(tmp_path)
    append(tmp_path / "supervisord.log", b"supervisord line\n")
    append(tmp_path / "api.log.1", b"backup line\n")
    append(tmp_path / "api.log", b"api line\n")
    assert got.wait_for(b"api line\n")
    follower.stop()
    assert got.lines == [b"api line\n"]


def test_rotation_reads_the_old_file_to_its_end_then_the_new_one(tmp_path):
    path = tmp_path / "backup_worker.log"
    append(path, b"")
    follower, got = follow(tmp_path)
    append(path, b"a\n")
    assert got.wait_for(b"a\n")
    # as supervisord rotates: write, rename, new file, go on writing
    with path.open("ab") as old:
        old.write(b"b\n")
        os.rename(path, tmp_path / "backup_worker.log.1")
        old.write(b"c\n")
    append(path, b"d\n")
    assert got.wait_for(b"d\n")
    follower.stop()
    assert got.lines == [b"a\n", b"b\n", b"c\n", b"d\n"]


def test_a_truncated_file_is_read_again_from_its_start(tmp_path):
    path = tmp_path / "api.log"
    append(path, b"before the start, long enough\n")
    follower, got = follow(tmp_path)
    with path.open("wb") as f:
        f.write(b"x\n")
    assert got.wait_for(b"x\n")
    follower.stop()


def test_stop_emits_the_last_lines_and_an_unterminated_one(tmp_path):
    path = tmp_path / "api.log"
    append(path, b"")
    follower = FollowFolder(tmp_path, interval=60)  # only stop() reads
    got = Collected()
    follower.start(got)
    append(path, b"last\nno newline")
    follower.stop()
    assert got.lines == [b"last\n", b"no newline\n"]


def test_a_huge_line_is_cut_not_held(tmp_path):
    path = tmp_path / "api.log"
    append(path, b"")
    follower, got = follow(tmp_path)
    append(path, b"y" * (MAX_LINE * 3) + b"\nafter\n")
    assert got.wait_for(b"after\n")
    follower.stop()
    assert all(len(line) <= MAX_LINE + 1 for line in got.lines)


def test_rotation_by_supervisors_own_handler_loses_and_repeats_nothing(tmp_path):
    # supervisord's RotatingFileHandler (the code that writes capture files),
    # rotating every ~20 lines; the follower must see every line once, in order
    from supervisor.loggers import LevelsByName, LogRecord, RotatingFileHandler

    handler = RotatingFileHandler(str(tmp_path / "api.log"), maxBytes=2000, backupCount=3)
    handler.setFormat("%(message)s")
    follower, got = follow(tmp_path)
    sent = []
    for i in range(200):
        line = b'{"program": "api", "n": %d, "pad": "%s"}\n' % (i, b"p" * 60)
        handler.emit(LogRecord(LevelsByName.INFO, line))
        sent.append(line)
        if i % 10 == 9:  # at most one rotation between two looks
            assert got.wait_for(line), i
    handler.close()
    follower.stop()
    assert (tmp_path / "api.log.3").exists()  # it did rotate, more than once
    assert got.lines == sent
