"""Rows written by the reference node (legacy ciphertext, spec §8.1/§15) are
served unchanged; our envelope is bound to its row."""

import uuid

from shared.crypto.sealing import legacy_encrypt
from shared.store.tables import KEY_SHARES, USERS, WALLETS
from tests.conftest import TEST_SECRET
from tests.support.keyshare_helpers import Wallet, secp_key, share_hex

VECTOR_STORED = (
    "AAECAwQFBgcICQoLDA0OD6ChoqOkpaanqKmqq3TaXryAPhBw1A6YdPmiJdF7u4pJWcQw+P6tYBRELuZNZySzBF6Ao"
    "evoE/ueDGFKejR/I71NdNESSvQnLmcl5Dt/5ZIemWlb/hoyhJAE0gNfXVtE+/zAfjNKZj0rL4NaYFOPp0mRJsr5Nz"
    "MGvcrHe0JpWaKtBfVx0hm1HoS7MaHRmtxfF5WB3Of4GkTR7fWYWw=="
)


def insert_reference_rows(db, user_auth_id, curve, key_hex, enc_share: str):
    wallet_id, share_id = str(uuid.uuid4()), str(uuid.uuid4())
    with db.transaction() as cur:
        cur.execute(
            f"INSERT INTO {USERS} (auth_type, user_auth_id) VALUES ('telegram', %s)"
            " ON CONFLICT DO NOTHING",
            (user_auth_id,),
        )
        cur.execute(
            f"INSERT INTO {WALLETS} (wallet_id, user_id, curve_type, public_key) SELECT %s,"
            f" user_id, %s, %s FROM {USERS} WHERE user_auth_id = %s",
            (wallet_id, curve, bytes.fromhex(key_hex), user_auth_id),
        )
        cur.execute(
            f"INSERT INTO {KEY_SHARES} (share_id, wallet_id, enc_share, status)"
            " VALUES (%s, %s, %s, 'active')",
            (share_id, wallet_id, enc_share.encode("ascii")),
        )
    return wallet_id, share_id


def test_reference_vector_row_is_served_over_v1_and_v2(api, db):
    wallet = Wallet(api)
    key = secp_key()
    _, share_id = insert_reference_rows(db, wallet.user_auth_id, "secp256k1", key, VECTOR_STORED)
    expected = bytes(range(64)).hex()
    r = wallet.post("/keyshare/v1/", {"public_key": key})
    assert r.json() == {"success": True, "data": {"share_id": share_id, "share": expected}}
    r = wallet.post("/keyshare/v2/", {"wallets": {"secp256k1": key}})
    assert r.json()["data"]["secp256k1"] == {"share_id": share_id, "share": expected}
    body = {"curve_type": "secp256k1", "public_key": key, "share": expected}
    assert wallet.post("/keyshare/v1/reshare", body).status_code == 200


def test_random_legacy_rows_decrypt(api, db):
    wallet = Wallet(api)
    for _ in range(3):
        key, share = secp_key(), share_hex()
        insert_reference_rows(
            db, wallet.user_auth_id, "secp256k1", key, legacy_encrypt(share, TEST_SECRET)
        )
        assert wallet.post("/keyshare/v1/", {"public_key": key}).json()["data"]["share"] == share


def test_envelope_copied_to_another_row_does_not_decrypt(api, db):
    wallet = Wallet(api)
    a, b = secp_key(), secp_key()
    for key in (a, b):
        wallet.post(
            "/keyshare/v1/register",
            {"curve_type": "secp256k1", "public_key": key, "share": share_hex()},
        )
    with db.transaction() as cur:
        cur.execute(
            f"UPDATE {KEY_SHARES} SET enc_share = (SELECT s.enc_share FROM {KEY_SHARES} s"
            f" JOIN {WALLETS} w USING (wallet_id) WHERE w.public_key = %s)"
            f" WHERE wallet_id = (SELECT wallet_id FROM {WALLETS} WHERE public_key = %s)",
            (bytes.fromhex(a), bytes.fromhex(b)),
        )
    r = wallet.post("/keyshare/v1/", {"public_key": b})
    # A ksn3 envelope names its wallet: a copy refuses this row's owner binding.
    assert r.status_code == 409
    assert r.json()["code"] == "SHARE_OWNER_MISMATCH"
    assert "Traceback" not in r.text
