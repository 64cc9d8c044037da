"""The identity fields of the unauthenticated check routes (spec §5.3,
§5.6): ``auth_type`` and ``user_auth_id`` are looked up as the reference
binds them to its query, whatever the body holds."""

from __future__ import annotations

import uuid

import pytest

from shared.crypto.sealing import legacy_encrypt
from shared.store.tables import KEY_SHARES, USERS, WALLETS
from tests.conftest import TEST_SECRET
from tests.support.keyshare_helpers import new_user_id, secp_key, share_hex


def insert_user_with_wallet(db, auth_type: str, user_auth_id: str, key_hex: str) -> None:
    """A user, a secp256k1 wallet and its share, as the reference writes them."""
    wallet_id = str(uuid.uuid4())
    with db.transaction() as cur:
        cur.execute(
            f"INSERT INTO {USERS} (auth_type, user_auth_id) VALUES (%s, %s) RETURNING user_id",
            (auth_type, user_auth_id),
        )
        user_id = cur.fetchone()[0]
        cur.execute(
            f"INSERT INTO {WALLETS} (wallet_id, user_id, curve_type, public_key)"
            " VALUES (%s, %s, 'secp256k1', %s)",
            (wallet_id, user_id, bytes.fromhex(key_hex)),
        )
        cur.execute(
            f"INSERT INTO {KEY_SHARES} (share_id, wallet_id, enc_share, status)"
            " VALUES (%s, %s, %s, 'active')",
            (
                str(uuid.uuid4()),
                wallet_id,
                legacy_encrypt(share_hex(), TEST_SECRET).encode("ascii"),
            ),
        )


@pytest.fixture()
def google_user(db) -> tuple[str, str]:
    """(user_auth_id, public key) of a Google user with one secp256k1 wallet."""
    user_auth_id, key = f"google_{new_user_id()}", secp_key()
    insert_user_with_wallet(db, "google", user_auth_id, key)
    return user_auth_id, key


def v1_check(api, **fields) -> dict:
    r = api.post("/keyshare/v1/check", json=fields)
    return {"status": r.status_code, **r.json()}


EXISTS = {"status": 200, "success": True, "data": {"exists": True}}
ABSENT = {"status": 200, "success": True, "data": {"exists": False}}


def test_v1_check_defaults_only_a_missing_or_null_auth_type_to_google(api, db, google_user):
    user_auth_id, key = google_user
    assert v1_check(api, user_auth_id=user_auth_id, public_key=key) == EXISTS
    assert v1_check(api, user_auth_id=user_auth_id, auth_type=None, public_key=key) == EXISTS
    # The reference's default is `auth_type ?? "google"`: an empty string is
    # looked up as it is and names nobody.
    assert v1_check(api, user_auth_id=user_auth_id, auth_type="", public_key=key) == ABSENT
    # ... so a wallet of this Google user is not "someone else's" for it either.
    other_id = f"google_{new_user_id()}"
    insert_user_with_wallet(db, "google", other_id, secp_key())
    assert v1_check(api, user_auth_id=other_id, public_key=key)["code"] == "PUBLIC_KEY_INVALID"
    assert v1_check(api, user_auth_id=other_id, auth_type="", public_key=key) == ABSENT


def test_identity_fields_that_are_not_strings_are_looked_up_as_their_text(api, db):
    """node-postgres binds a number or boolean as its JavaScript text: the
    reference answers 200 with what that text finds, not a 400."""
    key = secp_key()
    insert_user_with_wallet(db, "auth0", "1234567", key)
    assert v1_check(api, auth_type="auth0", user_auth_id=1234567, public_key=key) == EXISTS
    assert v1_check(api, auth_type="auth0", user_auth_id=1234567.0, public_key=key) == EXISTS
    for user_auth_id in (True, 7, [1234567], {"id": 1234567}):
        assert v1_check(api, auth_type="auth0", user_auth_id=user_auth_id, public_key=key) == ABSENT
    for auth_type in (False, 0, 5, ["auth0"], {}):
        assert v1_check(api, auth_type=auth_type, user_auth_id="1234567", public_key=key) == ABSENT

    body = {"auth_type": "auth0", "user_auth_id": 1234567, "wallets": {"secp256k1": key}}
    r = api.post("/keyshare/v2/check", json=body)
    assert (r.status_code, r.json()) == (
        200,
        {"success": True, "data": {"secp256k1": {"exists": True}}},
    )
    for changed in ({"auth_type": 5}, {"user_auth_id": [1]}, {"user_auth_id": False}):
        r = api.post("/keyshare/v2/check", json={**body, **changed})
        assert (r.status_code, r.json()) == (
            200,
            {"success": True, "data": {"secp256k1": {"exists": False}}},
        )
