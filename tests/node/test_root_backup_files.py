"""`ksnode backup` run as root into a DUMP_DIR that belongs to the programs'
account (`ksnode up` as root hands it over): the dump is that account's, so
the programs can restore it and the drill can read it; a link put at the
temporary name is not followed (pg_dump writes through the file root made,
never by name)."""

from __future__ import annotations

import os

import pytest

from shared.backup.dump import TMP_SUFFIX, dump_database
from tests.support.backup_helpers import REAL_TOOLS
from tests.support.node_process import run_ksnode

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root (chown)")

ATTACKER = 54321


@pytest.fixture()
def programs_dump_dir(tmp_path):
    folder = tmp_path / "dump"
    folder.mkdir(mode=0o700)
    os.chown(folder, ATTACKER, ATTACKER)
    return folder


def test_a_dump_root_makes_belongs_to_the_folders_owner(config, programs_dump_dir):
    dump = dump_database(config, REAL_TOOLS, programs_dump_dir)
    info = dump.path.stat()
    assert (info.st_uid, info.st_gid) == (ATTACKER, ATTACKER)
    assert info.st_mode & 0o777 == 0o600
    assert dump.path.read_bytes().startswith(b"PGDMP")


def test_a_link_at_the_temporary_name_is_not_followed(config, programs_dump_dir, tmp_path):
    target = tmp_path / "root-only"
    target.write_text("root's\n")
    target.chmod(0o600)
    link = programs_dump_dir / ("fixed.dump" + TMP_SUFFIX)
    link.symlink_to(target)
    os.chown(link, ATTACKER, ATTACKER, follow_symlinks=False)
    dump = dump_database(config, REAL_TOOLS, programs_dump_dir, name="fixed.dump")
    assert target.read_text() == "root's\n" and target.stat().st_uid == 0
    assert not dump.path.is_symlink() and dump.path.stat().st_uid == ATTACKER
    assert not link.exists() and not link.is_symlink()


def test_ksnode_backup_as_root_leaves_a_dump_the_programs_can_read(
    env_for, config, programs_dump_dir
):
    env = {**os.environ, **env_for(config.db_name), "DUMP_DIR": str(programs_dump_dir)}
    result = run_ksnode(env, "backup")
    assert result.returncode == 0, result.stderr
    dumps = list(programs_dump_dir.glob("*.dump"))
    assert len(dumps) == 1
    assert dumps[0].stat().st_uid == ATTACKER
    assert not list(programs_dump_dir.glob(f"*{TMP_SUFFIX}"))
