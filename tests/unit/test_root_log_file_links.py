"""Root writing the day's log file into a LOG_DIR that belongs to the
programs' account (`ksnode up` as root hands it over): a link that account
put in the file's place is refused, the file it names is left as it was,
and a file root creates is handed to the folder's owner."""

from __future__ import annotations

import logging
import os

import pytest

from shared.infra.logging import DailyFileHandler, local_today, log_file_name
from tests.support.attacker import (
    ATTACKER,
    assert_untouched,
    attacker_folder,
    root_file_fixture,  # noqa: F401 - the root_file fixture
)

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root (chown)")


@pytest.fixture()
def log_dir(tmp_path):
    return attacker_folder(tmp_path / "logs")


def write_a_line(log_dir) -> DailyFileHandler:
    handler = DailyFileHandler(log_dir)
    handler.setFormatter(logging.Formatter("%(message)s"))
    handler.emit(logging.LogRecord("ksnode", logging.INFO, __file__, 1, "a line", None, None))
    handler.close()
    return handler


def test_a_symlink_in_place_of_the_days_file_is_refused(log_dir, root_file, capsys):
    link = log_dir / log_file_name(local_today())
    link.symlink_to(root_file)
    os.chown(link, ATTACKER, ATTACKER, follow_symlinks=False)
    handler = write_a_line(log_dir)
    assert_untouched(root_file)
    assert handler.lost_lines == 1
    err = capsys.readouterr().err
    assert "refused to open" in err and "symbolic link" in err


def test_a_hard_link_in_place_of_the_days_file_is_refused(log_dir, root_file, capsys):
    os.link(root_file, log_dir / log_file_name(local_today()))
    handler = write_a_line(log_dir)
    assert_untouched(root_file)
    assert handler.lost_lines == 1
    assert "hard link" in capsys.readouterr().err


def test_a_day_file_root_creates_belongs_to_the_folders_owner(log_dir):
    write_a_line(log_dir)
    path = log_dir / log_file_name(local_today())
    info = path.stat()
    assert (info.st_uid, info.st_gid) == (ATTACKER, ATTACKER)
    assert info.st_mode & 0o777 == 0o640
    assert path.read_text() == "a line\n"


def test_an_existing_day_file_is_appended_to_and_keeps_its_owner(log_dir):
    path = log_dir / log_file_name(local_today())
    path.write_text("earlier\n")
    os.chown(path, 4242, 4242)
    write_a_line(log_dir)
    assert path.read_text() == "earlier\na line\n"
    assert path.stat().st_uid == 4242
