"""`ksnode --env-file FILE up`: the settings only in the file reach the
programs supervisord starts, and `ksnode --env-file FILE reload` checks the
code with them. Real `ksnode up`, real supervisord."""

from __future__ import annotations

import pytest

from tests.conftest import create_database
from tests.support.fakes.telegram import BOT_TOKEN
from tests.support.keyshare_helpers import secp_key, share_hex, v1_get, v1_register
from tests.support.node_process import NodeProcess, database_env


# The secret's file under the node's name and under the operator guide's
# .env name. Started as root, `ksnode up` hands the programs a private copy
# of the secret: the guide's name in the file must not then contradict it.
@pytest.fixture(scope="module", params=["ENCRYPTION_SECRET_PATH", "ENCRYPTION_SECRET_FILE_PATH"])
def node(request, pg_server, tmp_path_factory):
    base = tmp_path_factory.mktemp("env-file")
    node = NodeProcess.build(base / "var", database_env(pg_server, create_database(pg_server)))
    # The secret and the bot token only in the file, not in the environment.
    env_file = base / "node.env"
    env_file.write_text(
        f"{request.param}={node.env.pop('ENCRYPTION_SECRET_PATH')}\n"
        f"TELEGRAM_BOT_TOKEN={BOT_TOKEN}\n"
    )
    node.env.pop("TELEGRAM_BOT_TOKEN", None)
    node.env.pop("KSNODE_ENV_FILE", None)
    node.global_args = ["--env-file", str(env_file)]
    node.start()
    yield node
    assert node.stop() == 0


def test_the_programs_get_the_files_settings(node):
    key, share = secp_key(), share_hex()
    r = v1_register(node.url, "8181", key, share)
    assert r.status_code == 200, r.text  # the api has the file's bot token
    assert v1_get(node.url, "8181", key).json()["data"]["share"] == share


def test_reload_checks_the_code_with_the_files_settings(node):
    result = node.ksnode("reload")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "api: reloaded in place" in result.stdout
