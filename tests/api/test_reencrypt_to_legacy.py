"""`ksnode reencrypt --to legacy`, the way back to the reference: every share
and the server key are then in the spec §8 format under the current secret,
which an implementation written from the spec alone decrypts; our node still
serves every share; and `ksnode reencrypt` brings them back."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from shared.crypto.sealing import Cipher, key_id, share_aad
from shared.keys import keypair as keypairs
from shared.keys.keycheck import verify_keys
from shared.store.tables import SERVER_KEYPAIRS
from tests.conftest import TEST_SECRET
from tests.support.sealing_helpers import (
    all_served,
    ksnode,
    register_via_api,
    seed_shares,
    spec_ksn1_seal,
    spec_legacy_decrypt,
    spec_legacy_encrypt,
    stored_values,
)


@pytest.fixture(scope="module")
def entries(api, db):
    found = register_via_api(api, 10)
    found += seed_shares(db, 3, lambda s, w: spec_ksn1_seal(s, TEST_SECRET, share_aad(w)))
    found += seed_shares(db, 3, lambda s, _w: spec_legacy_encrypt(s, TEST_SECRET))
    return found


def keypair_rows(db):
    with db.cursor() as cur:
        cur.execute(f"SELECT public_key, enc_private_key FROM {SERVER_KEYPAIRS}")
        return [(bytes(public), enc) for public, enc in cur.fetchall()]


def test_legacy_output_is_read_by_a_spec_implementation_and_by_our_node(
    api, db, env_for, dbname, entries
):
    result = ksnode(env_for(dbname), "reencrypt", "--to", "legacy", "--yes", "--no-backup")
    assert result.returncode == 0, result.stdout + result.stderr

    values = stored_values(db)
    assert len(values) == len(entries)
    by_share = {spec_legacy_decrypt(v, TEST_SECRET) for v in values.values()}
    assert by_share == {e.share for e in entries}
    assert all(len(v) == 232 and v.endswith("==") for v in values.values())  # spec §8.1

    (public, enc), *others = keypair_rows(db)
    assert others == [] and len(enc) == 144  # spec §8.3
    seed = bytes.fromhex(spec_legacy_decrypt(enc, TEST_SECRET))
    derived = (
        Ed25519PrivateKey.from_private_bytes(seed)
        .public_key()
        .public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    )
    assert derived == public

    # Our node still serves every share, and a restart accepts the database.
    assert all_served(api, entries) == []
    verify_keys(db, Cipher(TEST_SECRET))
    assert keypairs.load_or_create(db, Cipher(TEST_SECRET))[0].public_key == public


def test_reencrypt_brings_legacy_rows_back_to_the_current_format(api, db, env_for, dbname, entries):
    result = ksnode(env_for(dbname), "reencrypt", "--yes", "--no-backup", "--jobs", "2")
    assert result.returncode == 0, result.stdout + result.stderr
    head = f"ksn3.{key_id(TEST_SECRET)}."
    assert all(v.startswith(head) for v in stored_values(db).values())
    assert all(enc.startswith(head) for _, enc in keypair_rows(db))
    assert all_served(api, entries) == []
