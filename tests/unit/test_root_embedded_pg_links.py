"""Root preparing the embedded Postgres's folders and log in a home another
account may have written to: a link in place of ``postgres.log`` or
``pg_data`` is refused and what it names keeps its owner; without links the
server's account gets them, as before."""

from __future__ import annotations

import os

import pytest

from shared.db.embedded import EmbeddedPostgres, EmbeddedPostgresError
from shared.node.accounts import POSTGRES_USER, system_account
from tests.support.attacker import (
    attacker_folder,
    plant_link,
    root_file_fixture,  # noqa: F401 - the root_file fixture
)

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root (chown, system users)")


@pytest.fixture()
def home(tmp_path):
    return attacker_folder(tmp_path / "home")


def server(home) -> EmbeddedPostgres:
    return EmbeddedPostgres(home / "pg_data", bin_dir=home.parent / "no-bin")


def test_a_symlink_in_place_of_postgres_log_is_refused(home, root_file):
    plant_link(home / "postgres.log", root_file)
    with pytest.raises(EmbeddedPostgresError, match="symbolic link"):
        server(home)._prepare_dirs()
    info = root_file.stat()
    assert (info.st_uid, info.st_gid) == (0, 0)
    assert root_file.read_text() == "root's\n"


def test_a_symlink_in_place_of_pg_data_is_refused(home, tmp_path):
    target = tmp_path / "root-folder"
    target.mkdir(mode=0o700)
    plant_link(home / "pg_data", target)
    with pytest.raises(EmbeddedPostgresError, match="not a folder"):
        server(home)._prepare_dirs()
    assert target.stat().st_uid == 0


def test_the_servers_account_gets_its_folders_and_log(home):
    account = system_account(POSTGRES_USER)
    assert account is not None
    pg = server(home)
    (home.parent / "no-bin").mkdir()
    pg._prepare_dirs()
    for path in (pg.data_dir, pg.socket_dir, pg.log_file):
        assert path.stat().st_uid == account.pw_uid
    assert pg.log_file.stat().st_mode & 0o777 == 0o600
