"""Server Ed25519 keypair: create once, load, legacy rows, rotation (spec §8.3-8.4)."""

import subprocess
import sys

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from shared.crypto.sealing import Cipher, legacy_encrypt
from shared.db.migrations import run_migrations
from shared.db.pool import Database
from shared.keys import keypair as keypairs
from shared.store.tables import SERVER_KEYPAIRS
from tests.conftest import TEST_SECRET


@pytest.fixture()
def empty_db(pg_server, env_for):
    from shared.config import load_config
    from tests.conftest import create_database

    name = create_database(pg_server)
    config = load_config(env_for(name))
    run_migrations(config)
    database = Database(config)
    yield database, config
    database.close()


def test_created_once_then_loaded(empty_db, cipher):
    db, _ = empty_db
    first, created = keypairs.load_or_create(db, cipher)
    again, created_again = keypairs.load_or_create(db, cipher)
    assert created and not created_again
    assert again == first
    public = Ed25519PrivateKey.from_private_bytes(first.seed).public_key().public_bytes_raw()
    assert public == first.public_key


def test_reference_row_is_loaded_with_its_stored_public_key(empty_db):
    db, _ = empty_db
    seed = "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60"
    public = bytes.fromhex("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a")
    with db.transaction() as cur:
        cur.execute(
            f"INSERT INTO {SERVER_KEYPAIRS} (keypair_id, public_key, enc_private_key)"
            " VALUES (gen_random_uuid(), %s, %s)",
            (public, legacy_encrypt(seed, TEST_SECRET)),
        )
    pair, created = keypairs.load_or_create(db, Cipher(TEST_SECRET))
    assert not created
    assert pair.public_key_hex == public.hex()
    assert pair.seed.hex() == seed


def test_wrong_secret_is_a_clear_error(empty_db, cipher):
    db, _ = empty_db
    keypairs.load_or_create(db, cipher)
    with pytest.raises(keypairs.KeypairError, match="ENCRYPTION_SECRET_PATH"):
        keypairs.load_or_create(db, Cipher("not the secret"))


def test_rotation_deactivates_old_and_activates_new(empty_db, cipher):
    db, _ = empty_db
    old, _ = keypairs.load_or_create(db, cipher)
    new = keypairs.rotate(db, cipher)
    assert new.version > old.version
    loaded, _ = keypairs.load_or_create(db, cipher)
    assert loaded.public_key == new.public_key
    rows = keypairs.list_keypairs(db)
    assert [r.is_active for r in rows] == [True, False]
    listing = keypairs.format_listing(rows)
    assert "Total: 2 keypair(s)" in listing and "✓ Yes" in listing and "✗ No" in listing


def test_cli_list_and_rotate(empty_db, env_for, tmp_path):
    _, config = empty_db
    env = env_for(config.db_name)
    env["PATH"] = "/usr/bin:/bin"
    run = lambda *args: subprocess.run(  # noqa: E731
        [sys.executable, "-m", "shared.cli", "rotate-keypair", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert "No server keypairs found." in run("--list").stdout
    rotated = run("--rotate")
    assert rotated.returncode == 0, rotated.stderr
    assert "version 1" in rotated.stdout
    assert "Total: 1 keypair(s)" in run("--list").stdout
    assert "usage" in run().stdout
