"""DB_HOST / DB_PORT as comma lists (libpq multi-host), one host as before."""

from __future__ import annotations

import pytest

from shared.config import ConfigError, load_config
from shared.db.pool import connect_kwargs

BASE = {"ENCRYPTION_SECRET_PATH": "/dev/null", "KSNODE_HOME": "/tmp/failover-unit"}


def test_one_host_stays_as_before_and_asks_for_a_read_write_session():
    config = load_config({**BASE, "DB_HOST": "db", "DB_PORT": "5433"})
    kwargs = connect_kwargs(config)
    assert (kwargs["host"], kwargs["port"]) == ("db", "5433")
    assert kwargs["target_session_attrs"] == "read-write"


def test_a_host_list_with_one_port_each_reaches_libpq_as_lists():
    config = load_config({**BASE, "DB_HOST": "db1, db2", "DB_PORT": "5432,5433"})
    kwargs = connect_kwargs(config)
    assert (kwargs["host"], kwargs["port"]) == ("db1,db2", "5432,5433")
    assert config.db_port == 5432


@pytest.mark.parametrize(
    ("host", "port", "problem"),
    [
        ("db1,db2", "p1,p2", "DB_PORT: expected a whole number"),
        ("db1,db2", "1,2,3", "DB_PORT: 3 ports for 2 DB_HOST entries"),
        ("db1,,db2", "5432", "DB_HOST: an empty entry"),
        ("db", "70000", "DB_PORT: expected a whole number from 1 to 65535"),
    ],
)
def test_a_bad_list_is_refused_with_the_reason(host, port, problem):
    with pytest.raises(ConfigError) as caught:
        load_config({**BASE, "DB_HOST": host, "DB_PORT": port})
    assert problem in str(caught.value)
