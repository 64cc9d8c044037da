"""Backups across a failover reach the new primary (or, with
BACKUP_FROM_STANDBY, a standby); a restore against a standby is refused
with the reason, before anything is dumped or changed."""

from __future__ import annotations

from dataclasses import replace

import pytest

from shared.backup.dump import dump_database, dump_source
from shared.backup.errors import RestoreFailed
from shared.backup.pgtools import find_tools
from shared.backup.restore import refuse_standby
from shared.config import load_config
from tests.support.pgpair import PgPair

pytestmark = pytest.mark.node


@pytest.fixture
def pair(tmp_path):
    pair = PgPair(tmp_path / "pg")
    yield pair
    pair.stop()


def config_for(pair: PgPair, dbname: str, tmp_path, *ports: int):
    return load_config(
        {
            "DB_HOST": ",".join("127.0.0.1" for _ in ports),
            "DB_PORT": ",".join(str(p) for p in ports),
            "DB_USER": "postgres",
            "DB_PASSWORD": pair.a.password,
            "DB_NAME": dbname,
            "KSNODE_HOME": str(tmp_path / "var"),
            "ENCRYPTION_SECRET_PATH": "/dev/null",
        }
    )


def test_dumps_reach_the_new_primary_and_a_restore_refuses_a_standby(pair, tmp_path):
    dbname = pair.create_database()
    pair.a.sql("CREATE TABLE t (n int); INSERT INTO t VALUES (1)", dbname)
    config = config_for(pair, dbname, tmp_path, pair.a.port, pair.b.port)
    tools = find_tools(config, 18)
    before = dump_database(config, tools, tmp_path / "dumps", name="before.dump")
    assert before.size > 0

    pair.a.kill9()
    pair.b.promote()
    pair.b.sql("INSERT INTO t VALUES (2)", dbname)
    after = dump_database(config, tools, tmp_path / "dumps", name="after.dump")
    assert after.size > 0  # the same host list, now served by the promoted standby

    pair.a.clone_from(pair.b)
    pair.a.start()
    # A dump may read from the standby when the operator asks for it.
    from_standby = dump_source(replace(config, backup_from_standby=True), dbname)
    assert from_standby.db_port == pair.a.port
    # A restore aimed at the standby alone is refused, saying why.
    with pytest.raises(RestoreFailed, match="restore refused: only a read-only server"):
        refuse_standby(config_for(pair, dbname, tmp_path, pair.a.port))
    refuse_standby(config)  # the list reaches the primary: allowed
