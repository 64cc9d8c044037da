"""Rotating the encryption secret on a real Postgres: old secret moved to the
previous list, a new current one, every share served throughout; `ksnode
reencrypt`; old secret removed, every share still served. A start with rows
under a secret the node lacks is refused in one line, before serving."""

from __future__ import annotations

import socket

import pytest

from services.api.app import create_app
from shared.config import load_config
from shared.crypto.sealing import Cipher, key_id
from shared.crypto.secretfiles import load_cipher
from shared.db.migrations import run_migrations
from shared.db.pool import Database
from shared.keys import keypair as keypairs
from shared.keys.keycheck import KeyCheckFailed, verify_keys
from shared.store.tables import SERVER_KEYPAIRS
from tests.conftest import TEST_SECRET, ApiServer, build_node_context, create_database
from tests.support.sealing_helpers import (
    all_served,
    ksnode,
    register_via_api,
    seed_shares,
    spec_ksn1_seal,
    spec_legacy_encrypt,
    stored_values,
    write_secret,
)

NEW_SECRET = "the new secret after a suspected leak"


@pytest.fixture()
def node_with(config, db):
    servers: list[ApiServer] = []

    def start(cipher: Cipher) -> ApiServer:
        server = ApiServer(create_app(build_node_context(config, db, cipher))).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


def keypair_values(db) -> list[str]:
    with db.cursor() as cur:
        cur.execute(f"SELECT enc_private_key FROM {SERVER_KEYPAIRS}")
        return [row[0] for row in cur.fetchall()]


def test_rotation_keeps_every_share_served(node_with, db, env_for, dbname, module_tmp, cipher):
    old_node = node_with(cipher)
    entries = register_via_api(old_node, 12)
    entries += seed_shares(db, 4, lambda share, _w: spec_legacy_encrypt(share, TEST_SECRET))
    entries += seed_shares(
        db, 4, lambda share, w: spec_ksn1_seal(share, TEST_SECRET, f'"2_key_shares".wallet_id={w}')
    )
    assert all_served(old_node, entries) == []

    # Step 1: the old secret becomes a previous one, a new one is current.
    old_file = module_tmp / "encryption_secret.txt"
    new_file = write_secret(module_tmp, "new_secret.txt", NEW_SECRET)
    env = env_for(
        dbname,
        ENCRYPTION_SECRET_PATH=str(new_file),
        ENCRYPTION_SECRET_PREVIOUS_PATHS=str(old_file),
    )
    rotated = load_cipher(
        load_config(env).effective_secret_path, load_config(env).encryption_secret_previous_paths
    )
    assert rotated.current_key_id == key_id(NEW_SECRET)
    verify_keys(db, rotated)  # the start check passes
    rotating_node = node_with(rotated)
    assert all_served(rotating_node, entries) == []
    entries += register_via_api(rotating_node, 4)  # written under the new secret
    assert all_served(rotating_node, entries) == []

    # Step 2: reencrypt, as the operator runs it.
    result = ksnode(env, "reencrypt", "--yes", "--no-backup", "--batch-size", "7")
    assert result.returncode == 0, result.stdout + result.stderr
    head = f"ksn3.{key_id(NEW_SECRET)}."
    assert all(v.startswith(head) for v in stored_values(db).values())
    assert all(v.startswith(head) for v in keypair_values(db))
    assert TEST_SECRET not in result.stdout + result.stderr
    assert NEW_SECRET not in result.stdout + result.stderr

    # Step 3: the old secret is removed; every share is still served.
    new_only = Cipher(NEW_SECRET)
    verify_keys(db, new_only)
    final_node = node_with(new_only)
    assert all_served(final_node, entries) == []
    assert keypairs.load_or_create(db, new_only)[1] is False  # same keypair, readable

    # A second run finds nothing to do.
    again = ksnode(env_for(dbname, ENCRYPTION_SECRET_PATH=str(new_file)), "reencrypt", "--yes")
    assert again.returncode == 0 and "nothing to do" in again.stdout


@pytest.fixture(scope="module")
def old_database(pg_server, env_for, module_tmp):
    """A database whose rows are all under a secret the refusal tests do not configure."""
    name = create_database(pg_server)
    old_file = write_secret(module_tmp, "forgotten_secret.txt", "a secret the node forgot")
    config = load_config(env_for(name, ENCRYPTION_SECRET_PATH=str(old_file)))
    run_migrations(config)
    database = Database(config)
    old = Cipher("a secret the node forgot")
    keypairs.load_or_create(database, old)
    seed_shares(database, 3, lambda share, w: old.encrypt(share, f'"2_key_shares".wallet_id={w}'))
    yield name, old_file
    database.close()


def free_local_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def refused_line(stderr: str, prefix: str) -> str:
    lines = [line for line in stderr.splitlines() if line.startswith(prefix)]
    assert len(lines) == 1, stderr
    return lines[0]


def test_api_start_with_a_missing_previous_secret_is_refused_with_the_count(old_database, env_for):
    name, _old_file = old_database
    port = free_local_port()
    env = env_for(name, PORT=str(port), HOST="127.0.0.1", API_WORKERS="1")
    result = ksnode_program(env, "services.api")
    assert result.returncode == 2
    line = refused_line(result.stderr, "ksnode: refusing to start: 3 key shares")
    kid = key_id("a secret the node forgot")
    assert f"3 key shares under key id {kid}" in line
    assert f"1 server keypair under key id {kid}" in line
    assert "a secret the node forgot" not in result.stderr + result.stdout
    with socket.socket() as probe:  # nothing was listening meanwhile or now
        assert probe.connect_ex(("127.0.0.1", port)) != 0


def test_ksnode_up_refuses_before_starting_anything(old_database, env_for, module_tmp):
    name, _old_file = old_database
    home = module_tmp / "up_home"
    env = env_for(name, KSNODE_HOME=str(home), PORT=str(free_local_port()), HOST="127.0.0.1")
    result = ksnode(env, "up", timeout=120)
    assert result.returncode == 1
    line = refused_line(result.stderr, "ksnode: cannot start: 3 key shares")
    assert f"under key id {key_id('a secret the node forgot')}" in line
    assert not (home / "run" / "supervisord.pid").exists()


def test_with_the_previous_secret_configured_the_start_check_passes(
    old_database, env_for, module_tmp
):
    name, old_file = old_database
    env = env_for(name, ENCRYPTION_SECRET_PREVIOUS_PATHS=str(old_file))
    config = load_config(env)
    cipher = load_cipher(config.effective_secret_path, config.encryption_secret_previous_paths)
    database = Database(config, maxconn=1)
    try:
        usage = verify_keys(database, cipher)
        with pytest.raises(KeyCheckFailed, match="3 key shares under key id"):
            verify_keys(database, Cipher(TEST_SECRET))
    finally:
        database.close()
    assert {u.state(cipher) for u in usage} == {"previous"}


def ksnode_program(env: dict[str, str], module: str):
    import os
    import subprocess
    import sys

    from tests.support.sealing_helpers import ROOT

    return subprocess.run(
        [sys.executable, "-m", module],
        env={"PATH": os.environ.get("PATH", ""), **env},
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
