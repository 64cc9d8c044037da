"""Shares sealed to their owner (ksn3): someone who can write the database
but lacks the secret cannot hand a share to another login, by remapping a
wallet or by swapping identities; reencrypt binds older rows (real Postgres,
real HTTP)."""

from __future__ import annotations

from shared.crypto.sealing import Cipher, legacy_encrypt, share_aad, value_format
from shared.keys.reencrypt import Reencryptor
from shared.store.tables import USERS, WALLETS
from tests.conftest import TEST_SECRET
from tests.support.keyshare_helpers import Wallet, ed_key, secp_key, share_hex
from tests.support.ops import OPS_HEADERS
from tests.support.sealing_helpers import seed_shares, served, spec_ksn1_seal, stored_values


def two_users(api) -> tuple[Wallet, dict[str, str], Wallet]:
    """A victim with both wallets (v2 registration) and an attacker with a login."""
    victim, attacker = Wallet(api), Wallet(api)
    keys = {"secp256k1": secp_key(), "ed25519": ed_key()}
    r = victim.register_v2(keys["secp256k1"], share_hex(), keys["ed25519"], share_hex())
    assert r.status_code == 200
    r = attacker.register_v2(secp_key(), share_hex(), ed_key(), share_hex())
    assert r.status_code == 200
    return victim, keys, attacker


def user_id(db, wallet: Wallet) -> str:
    with db.cursor() as cur:
        cur.execute(
            f"SELECT user_id::text FROM {USERS} WHERE user_auth_id = %s", (wallet.user_auth_id,)
        )
        return cur.fetchone()[0]


def assert_refused(wallet: Wallet, keys: dict[str, str]) -> None:
    """No share on v1 nor v2, the documented code, no share text anywhere."""
    for body, path in (
        ({"public_key": keys["secp256k1"]}, "/keyshare/v1/"),
        ({"curve_type": "ed25519", "public_key": keys["ed25519"]}, "/keyshare/v1/"),
        ({"wallets": keys}, "/keyshare/v2/"),
    ):
        r = wallet.post(path, body)
        assert r.status_code == 409, r.text
        assert r.json()["code"] == "SHARE_OWNER_MISMATCH"
        assert "share_id" not in r.text and "data" not in r.json()


def health_reasons(api) -> dict[str, dict]:
    body = api.session.get(f"{api.url}/health", headers=OPS_HEADERS).json()
    return {reason["reason"]: reason for reason in body["reasons"]}


def test_remapped_wallet_is_never_served(api, db, caplog):
    victim, keys, attacker = two_users(api)
    victim_id, attacker_id = user_id(db, victim), user_id(db, attacker)
    with db.transaction() as cur:
        cur.execute(
            f"UPDATE {WALLETS} SET user_id = %s WHERE user_id = %s", (attacker_id, victim_id)
        )
    with caplog.at_level("ERROR"):
        assert_refused(attacker, keys)
    logged = [r for r in caplog.records if getattr(r, "event", "") == "share.owner_mismatch"]
    assert logged and {r.wallet_id for r in logged}  # the log line names the wallet
    assert health_reasons(api)["share_binding_mismatch"]["count"] == 2
    # A reshare confirmation is refused the same way (nothing stamped).
    body = {"curve_type": "secp256k1", "public_key": keys["secp256k1"], "share": share_hex()}
    assert attacker.post("/keyshare/v1/reshare", body).json()["code"] == "SHARE_OWNER_MISMATCH"

    # Put back: the owner is served again and the reason clears by itself.
    with db.transaction() as cur:
        cur.execute(
            f"UPDATE {WALLETS} SET user_id = %s WHERE public_key = ANY(%s)",
            (victim_id, [bytes.fromhex(k) for k in keys.values()]),
        )
    assert victim.post("/keyshare/v2/", {"wallets": keys}).status_code == 200
    assert "share_binding_mismatch" not in health_reasons(api)


def test_swapped_identity_is_never_served(api, db):
    victim, keys, attacker = two_users(api)
    a, b = victim.user_auth_id, attacker.user_auth_id
    with db.transaction() as cur:  # swap user_auth_id between the two user rows
        cur.execute(f"UPDATE {USERS} SET user_auth_id = 'swap' WHERE user_auth_id = %s", (a,))
        cur.execute(f"UPDATE {USERS} SET user_auth_id = %s WHERE user_auth_id = %s", (a, b))
        cur.execute(f"UPDATE {USERS} SET user_auth_id = %s WHERE user_auth_id = 'swap'", (b,))
    # The attacker's login now finds the victim's user row and wallets.
    assert_refused(attacker, keys)
    body = {"wallets": {"secp256k1": {"public_key": keys["secp256k1"], "share": share_hex()}}}
    r = attacker.post("/keyshare/v2/reshare", body)
    assert (r.status_code, r.json()["code"]) == (409, "SHARE_OWNER_MISMATCH")
    assert "share_binding_mismatch" in health_reasons(api)
    with db.transaction() as cur:  # swapped back: each served their own again
        cur.execute(f"UPDATE {USERS} SET user_auth_id = 'swap' WHERE user_auth_id = %s", (a,))
        cur.execute(f"UPDATE {USERS} SET user_auth_id = %s WHERE user_auth_id = %s", (a, b))
        cur.execute(f"UPDATE {USERS} SET user_auth_id = %s WHERE user_auth_id = 'swap'", (b,))
    assert victim.post("/keyshare/v2/", {"wallets": keys}).status_code == 200
    assert "share_binding_mismatch" not in health_reasons(api)


def test_a_second_user_row_with_the_victims_user_id_is_never_served(api, db):
    """Someone who can write the database gives their own login a user row
    carrying the victim's user_id (the primary key dropped first): the
    lookup finds that row for the attacker's token and the wallets it owns.
    The share opens only as the identity the token proved, not as the one
    the users table names, so it is refused."""
    victim, keys = Wallet(api), {"secp256k1": secp_key(), "ed25519": ed_key()}
    r = victim.register_v2(keys["secp256k1"], share_hex(), keys["ed25519"], share_hex())
    assert r.status_code == 200
    attacker = Wallet(api)  # a login with no user row of its own
    victim_id = user_id(db, victim)
    with db.transaction() as cur:
        cur.execute(f'ALTER TABLE {USERS} DROP CONSTRAINT "2_users_pkey"')
        cur.execute(
            f"INSERT INTO {USERS} (user_id, auth_type, user_auth_id) VALUES (%s, %s, %s)",
            (victim_id, "telegram", attacker.user_auth_id),
        )
    try:
        assert_refused(attacker, keys)
        assert "share_binding_mismatch" in health_reasons(api)
        assert victim.post("/keyshare/v2/", {"wallets": keys}).status_code == 200
    finally:
        with db.transaction() as cur:
            cur.execute(f"DELETE FROM {USERS} WHERE user_auth_id = %s", (attacker.user_auth_id,))
            cur.execute(f'ALTER TABLE {USERS} ADD CONSTRAINT "2_users_pkey" PRIMARY KEY (user_id)')


def test_reencrypt_binds_legacy_ksn1_and_ksn2_rows(start_api, db):
    old = Cipher(TEST_SECRET)
    entries = seed_shares(db, 2, lambda s, w: legacy_encrypt(s, TEST_SECRET))
    entries += seed_shares(db, 2, lambda s, w: spec_ksn1_seal(s, TEST_SECRET, share_aad(w)))
    entries += seed_shares(db, 2, lambda s, w: old.encrypt(s, share_aad(w)))
    before = start_api()
    unbound = health_reasons(before)["shares_unbound"]
    assert unbound["key_shares"] >= 6
    metrics = before.session.get(f"{before.url}/metrics", headers=OPS_HEADERS).text
    assert 'ksnode_unbound_sealed_values{table="key_shares"}' in metrics
    # Served as they are before the rewrap.
    assert all(served(before, e) == e.share for e in entries)

    outcome = Reencryptor(db, Cipher(TEST_SECRET), batch_size=3).run()
    assert outcome.complete and outcome.rewritten >= 6
    values = stored_values(db)
    assert {value_format(values[e.wallet_id])[0] for e in entries} == {"ksn3"}

    after = start_api()  # a fresh usage count
    assert all(served(after, e) == e.share for e in entries)
    assert "shares_unbound" not in health_reasons(after)
    metrics = after.session.get(f"{after.url}/metrics", headers=OPS_HEADERS).text
    assert 'ksnode_unbound_sealed_values{table="key_shares"} 0.0' in metrics

    # Now bound: the same rows refuse a remap to another user.
    thief = Wallet(after)
    body = {"curve_type": "secp256k1", "public_key": secp_key(), "share": share_hex()}
    assert thief.post("/keyshare/v1/register", body).status_code == 200
    with db.transaction() as cur:
        cur.execute(
            f"UPDATE {WALLETS} SET user_id = (SELECT user_id FROM {USERS}"
            " WHERE user_auth_id = %s) WHERE wallet_id = %s",
            (thief.user_auth_id, entries[0].wallet_id),
        )
    r = thief.post("/keyshare/v1/", {"public_key": entries[0].public_key})
    assert (r.status_code, r.json()["code"]) == (409, "SHARE_OWNER_MISMATCH")
    with db.transaction() as cur:  # put back for the next test
        cur.execute(
            f"UPDATE {WALLETS} SET user_id = (SELECT user_id FROM {USERS}"
            " WHERE user_auth_id = %s) WHERE wallet_id = %s",
            (f"telegram_{entries[0].user_id}", entries[0].wallet_id),
        )
    assert served(after, entries[0]) == entries[0].share


def test_reencrypt_to_legacy_gives_the_binding_up(db):
    entries = seed_shares(db, 2, lambda s, w: Cipher(TEST_SECRET).encrypt(s, share_aad(w)))
    assert Reencryptor(db, Cipher(TEST_SECRET)).run().complete
    assert Reencryptor(db, Cipher(TEST_SECRET), "legacy").run().complete
    values = stored_values(db)
    assert {value_format(values[e.wallet_id])[0] for e in entries} == {"legacy"}
    assert Cipher(TEST_SECRET).decrypt(values[entries[0].wallet_id], "") == entries[0].share
    # Back to ksn3 for the rest of the module's node.
    assert Reencryptor(db, Cipher(TEST_SECRET)).run().complete


def test_an_old_unbound_value_written_back_is_refused_with_unbound_shares_refuse(start_api, db):
    """Someone holding the database and a copy from before `ksnode reencrypt`
    (an old dump) re-points the victim's wallet to their own login and writes
    the old ksn2 value back (or a legacy value, bound to nothing): served by a
    node that still serves unbound rows, refused by one told every row is
    bound (UNBOUND_SHARES=refuse)."""
    old = Cipher(TEST_SECRET)
    ksn2_victim, legacy_victim = seed_shares(db, 2, lambda s, w: old.encrypt(s, share_aad(w)))
    with db.transaction() as cur:
        cur.execute(
            'UPDATE "2_key_shares" SET enc_share = %s WHERE wallet_id = %s',
            (legacy_encrypt(legacy_victim.share, TEST_SECRET).encode(), legacy_victim.wallet_id),
        )
    old_values = stored_values(db)
    assert value_format(old_values[ksn2_victim.wallet_id])[0] == "ksn2"
    assert value_format(old_values[legacy_victim.wallet_id])[0] == "legacy"
    assert Reencryptor(db, Cipher(TEST_SECRET)).run().complete
    serving, refusing = start_api(), start_api(unbound_shares="refuse")
    for node in (serving, refusing):  # bound rows: both serve their owners
        assert served(node, ksn2_victim) == ksn2_victim.share

    thief = Wallet(serving)
    body = {"curve_type": "secp256k1", "public_key": secp_key(), "share": share_hex()}
    assert thief.post("/keyshare/v1/register", body).status_code == 200
    with db.transaction() as cur:
        for victim in (ksn2_victim, legacy_victim):
            cur.execute(
                f"UPDATE {WALLETS} SET user_id = (SELECT user_id FROM {USERS}"
                " WHERE user_auth_id = %s) WHERE wallet_id = %s",
                (thief.user_auth_id, victim.wallet_id),
            )
            cur.execute(
                'UPDATE "2_key_shares" SET enc_share = %s WHERE wallet_id = %s',
                (old_values[victim.wallet_id].encode(), victim.wallet_id),
            )
    for victim in (ksn2_victim, legacy_victim):
        stolen = Wallet(serving, thief.user_id).post(
            "/keyshare/v1/", {"public_key": victim.public_key}
        )
        assert stolen.json()["data"]["share"] == victim.share  # the risk the setting closes
        r = Wallet(refusing, thief.user_id).post("/keyshare/v1/", {"public_key": victim.public_key})
        assert (r.status_code, r.json()["code"]) == (409, "SHARE_OWNER_MISMATCH")
        assert "data" not in r.json()
    assert "share_binding_mismatch" in health_reasons(refusing)
    # Put back and bound again for the rest of the module.
    with db.transaction() as cur:
        for victim in (ksn2_victim, legacy_victim):
            cur.execute(
                f"UPDATE {WALLETS} SET user_id = (SELECT user_id FROM {USERS}"
                " WHERE user_auth_id = %s) WHERE wallet_id = %s",
                (f"telegram_{victim.user_id}", victim.wallet_id),
            )
    assert Reencryptor(db, Cipher(TEST_SECRET)).run().complete
    assert served(refusing, legacy_victim) == legacy_victim.share
