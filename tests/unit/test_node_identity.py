"""NODE_ID: a node's name among nodes sharing one database."""

import socket

from shared.config import ConfigError, load_config


def test_default_node_id_is_host_name_and_home(tmp_path):
    config = load_config({"KSNODE_HOME": str(tmp_path / "a")})
    assert config.effective_node_id == f"{socket.gethostname()}:{tmp_path / 'a'}"
    other = load_config({"KSNODE_HOME": str(tmp_path / "b")})
    assert other.effective_node_id != config.effective_node_id


def test_node_id_setting_wins(tmp_path):
    config = load_config({"KSNODE_HOME": str(tmp_path), "NODE_ID": " replica-1 "})
    assert config.effective_node_id == "replica-1"


def test_overlong_node_id_is_a_config_error():
    try:
        load_config({"NODE_ID": "x" * 201})
    except ConfigError as exc:
        assert any(problem.startswith("NODE_ID") for problem in exc.problems)
    else:
        raise AssertionError("NODE_ID of 201 characters was accepted")
