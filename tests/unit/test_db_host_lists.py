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


def test_every_connection_probes_a_vanished_host_within_seconds(config):
    """TCP keepalives and a user timeout on every program's connections (a
    host gone without a reset is noticed in about 30 s, not two hours):
    libpq takes them, and a real connection carries them."""
    from shared.db.pool import Database

    kwargs = connect_kwargs(config)
    assert kwargs["keepalives"] == 1 and kwargs["keepalives_idle"] == 15
    assert kwargs["tcp_user_timeout"] == 30_000
    db = Database(config, maxconn=1)
    try:
        with db.connection() as conn:
            params = conn.get_dsn_parameters()
    finally:
        db.close()
    assert (params["keepalives_idle"], params["keepalives_count"]) == ("15", "3")
    assert params["tcp_user_timeout"] == "30000"
