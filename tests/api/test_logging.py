"""JSON-lines logs: daily file named by UTC date, program name, 7-day deletion,
no secrets."""

import datetime as dt
import json
import logging
import os
import subprocess
import sys

import pytest

from shared.infra.logging import configure_logging, delete_old_logs, local_today, log_file_name


@pytest.fixture(autouse=True)
def restore_root_logger():
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for handler in list(root.handlers):
        root.removeHandler(handler)
        handler.close()
    for handler in handlers:
        root.addHandler(handler)
    root.setLevel(level)


def test_lines_are_json_with_program_and_go_to_the_daily_file(tmp_path):
    log = configure_logging("backup_worker", tmp_path, "info", stdout=False)
    log.info(
        "dump completed",
        extra={"event": "dump.completed", "bytes": 12, "password": "hunter2", "token": "abc"},
    )
    logging.getLogger().handlers[0].flush()
    path = tmp_path / log_file_name(local_today())
    line = json.loads(path.read_text().splitlines()[-1])
    assert line["program"] == "backup_worker"
    assert line["message"] == "dump completed"
    assert line["event"] == "dump.completed" and line["bytes"] == 12
    assert line["level"] == "info"
    assert line["time"].endswith("Z")
    assert "hunter2" not in path.read_text() and "abc" not in json.dumps(line.get("token"))


def test_files_older_than_seven_days_are_deleted(tmp_path):
    today = dt.date(2026, 11, 25)
    for days in range(0, 12):
        (tmp_path / log_file_name(today - dt.timedelta(days=days))).write_text("x")
    (tmp_path / "unrelated.log").write_text("keep")
    removed = delete_old_logs(tmp_path, today)
    assert len(removed) == 4  # 8, 9, 10, 11 days old
    assert (tmp_path / log_file_name(today - dt.timedelta(days=7))).exists()
    assert (tmp_path / "unrelated.log").exists()


def test_level_filters(tmp_path):
    log = configure_logging("api", tmp_path, "warning", stdout=False)
    log.info("hidden")
    log.warning("shown")
    text = (tmp_path / log_file_name(local_today())).read_text()
    assert "shown" in text and "hidden" not in text


def test_a_full_log_disk_loses_lines_quietly_and_says_so_once(tmp_path, capsys):
    from tests.support.filesystems import fill, small_tmpfs

    mount = tmp_path / "full"
    with small_tmpfs(mount, "256k") as mounted:
        if not mounted:
            pytest.skip("needs to mount a tmpfs (root)")
        log = configure_logging("api", mount / "logs", "info", stdout=False)
        log.info("before the disk filled", extra={"event": "x"})
        fill(mount)
        for i in range(500):
            log.info("while full", extra={"event": "y", "i": i})
        handler = logging.getLogger().handlers[0]
        lost = handler.lost_lines
        written = (mount / "logs" / log_file_name(local_today())).read_text()
    err = capsys.readouterr().err
    assert lost >= 400  # the first few still fit in the log file's last page
    assert err.count("cannot write to") == 1, err
    assert "No space left on device" in err and "log lines lost so far" in err
    assert "Traceback" not in err and "Logging error" not in err
    assert "before the disk filled" in written


def test_file_named_by_the_nodes_local_date_and_warn_level(tmp_path):
    # A time zone whose date differs from UTC's right now, as near midnight on
    # a non-UTC host; the name must be what the guide's `date +%Y-%m-%d` says.
    utc_hour = dt.datetime.now(dt.UTC).hour
    tz = "XXX-14" if utc_hour >= 10 else "XXX+12"  # POSIX: UTC+14 / UTC-12
    code = (
        "import pathlib, sys; from shared.infra.logging import configure_logging;"
        "log = configure_logging('api', pathlib.Path(sys.argv[1]), 'warn', stdout=False);"
        "log.info('hidden'); log.warning('shown', extra={'event': 'x.y'})"
    )
    env = {**os.environ, "TZ": tz}
    subprocess.run([sys.executable, "-c", code, str(tmp_path)], env=env, check=True, timeout=60)
    shell_date = subprocess.run(
        ["date", "+%Y-%m-%d"], env=env, capture_output=True, text=True, check=True
    ).stdout.strip()
    assert shell_date != dt.datetime.now(dt.UTC).date().isoformat()
    files = [p.name for p in tmp_path.iterdir()]
    assert files == [f"ksnode-{shell_date}.log"]
    (line,) = [json.loads(x) for x in (tmp_path / files[0]).read_text().splitlines()]
    assert line["level"] == "warn" and line["message"] == "shown"
    assert line["time"].endswith("Z")  # the time inside stays UTC


def test_a_deep_traceback_is_written_shortened(tmp_path):
    """A recursion thousands of frames deep logs its head and tail, not
    150 kB per line."""
    log = configure_logging("api", tmp_path, "info", stdout=False)

    # Two functions in turn: Python folds a frame repeated in a row, not these.
    def down(n: int) -> None:
        if n == 0:
            raise ValueError("the innermost frame")
        across(n - 1)

    def across(n: int) -> None:
        down(n)

    try:
        down(300)
    except ValueError:
        log.exception("unhandled error", extra={"event": "request.error"})
    logging.getLogger().handlers[0].flush()
    line = (tmp_path / log_file_name(local_today())).read_text().splitlines()[-1]
    assert len(line) < 10_000
    record = json.loads(line)
    assert record["event"] == "request.error"
    assert record["exc_info"].startswith("Traceback (most recent call last):")
    assert "characters left out" in record["exc_info"]
    assert record["exc_info"].endswith("ValueError: the innermost frame")
