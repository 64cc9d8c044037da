"""Small builders shared by the key share API tests."""

from __future__ import annotations

import os

from tests.support.fakes.telegram import bearer

KEYSHARE_ROUTES = [
    "/keyshare/v1/register",
    "/keyshare/v1",
    "/keyshare/v1/check",
    "/keyshare/v1/reshare",
    "/keyshare/v2",
    "/keyshare/v2/check",
    "/keyshare/v2/register",
    "/keyshare/v2/register/ed25519",
    "/keyshare/v2/reshare",
    "/keyshare/v2/reshare/register",
]
# every POST route: the key share ones and the admin (backup) ones
POST_ROUTES = [
    *KEYSHARE_ROUTES,
    "/pg_dump/v1/backup",
    "/pg_dump/v1/restore",
    "/pg_dump/v1/get_backup_history",
]


def secp_key() -> str:
    return "02" + os.urandom(32).hex()


def ed_key() -> str:
    return os.urandom(32).hex()


def share_hex() -> str:
    return os.urandom(64).hex()


def new_user_id() -> str:
    return str(int.from_bytes(os.urandom(6), "big"))


class Wallet:
    """A Telegram user with helpers for the v1/v2 calls."""

    def __init__(self, api, user_id: str | None = None):
        self.api = api
        self.user_id = user_id or new_user_id()
        self.user_auth_id = f"telegram_{self.user_id}"

    @property
    def headers(self) -> dict[str, str]:
        return bearer(self.user_id)

    def post(self, path: str, body: dict, **kw):
        body = {"auth_type": "telegram", **body}
        return self.api.post(path, json=body, headers=self.headers, **kw)

    def register_v2(self, secp: str, secp_share: str, ed: str, ed_share: str):
        return self.post(
            "/keyshare/v2/register",
            {
                "wallets": {
                    "secp256k1": {"public_key": secp, "share": secp_share},
                    "ed25519": {"public_key": ed, "share": ed_share},
                }
            },
        )


def register_v2_user(api):
    """A new user with both v2 wallets registered: (wallet, response); the
    wallet's ``keys`` and ``shares`` are by curve."""
    wallet = Wallet(api)
    wallet.keys = {"secp256k1": secp_key(), "ed25519": ed_key()}
    wallet.shares = {"secp256k1": share_hex(), "ed25519": share_hex()}
    r = wallet.register_v2(
        wallet.keys["secp256k1"],
        wallet.shares["secp256k1"],
        wallet.keys["ed25519"],
        wallet.shares["ed25519"],
    )
    return wallet, r


def register_wallets(api, n: int) -> list[tuple[Wallet, str]]:
    """``n`` new users, each with a secp256k1 wallet registered over v1;
    (wallet, public key) pairs to read them back."""
    keys = []
    for _ in range(n):
        wallet, key = Wallet(api), secp_key()
        r = wallet.post(
            "/keyshare/v1/register",
            {"curve_type": "secp256k1", "public_key": key, "share": share_hex()},
        )
        assert r.status_code == 200, r.text
        keys.append((wallet, key))
    return keys


def keyshare_bodies(secp: str, secp_share: str, ed: str, ed_share: str) -> dict[str, dict]:
    """A well-formed body for each key share route, with the given fields."""
    v1 = {"curve_type": "secp256k1", "public_key": secp, "share": secp_share}
    wallets = {
        "secp256k1": {"public_key": secp, "share": secp_share},
        "ed25519": {"public_key": ed, "share": ed_share},
    }
    return {
        "/keyshare/v1/register": v1,
        "/keyshare/v1": {"public_key": secp},
        "/keyshare/v1/check": {"public_key": secp, "user_auth_id": "telegram_1"},
        "/keyshare/v1/reshare": v1,
        "/keyshare/v2": {"wallets": {"secp256k1": secp, "ed25519": ed}},
        "/keyshare/v2/check": {"wallets": {"secp256k1": secp, "ed25519": ed}},
        "/keyshare/v2/register": {"wallets": wallets},
        "/keyshare/v2/register/ed25519": {"public_key": ed, "share": ed_share},
        "/keyshare/v2/reshare": {"wallets": wallets},
        "/keyshare/v2/reshare/register": {"wallets": wallets},
    }


def table_counts(db) -> tuple[int, int, int]:
    """Rows in the users, wallets and key shares tables."""
    with db.cursor() as cur:
        cur.execute(
            'SELECT (SELECT count(*) FROM "2_users"), (SELECT count(*) FROM "2_wallets"),'
            ' (SELECT count(*) FROM "2_key_shares")'
        )
        return cur.fetchone()


def v1_register(url: str, user: str, key: str, share: str, timeout: float = 15):
    """POST /keyshare/v1/register over HTTP as Telegram user ``user``."""
    import requests

    body = {"auth_type": "telegram", "curve_type": "secp256k1", "public_key": key, "share": share}
    return requests.post(
        url + "/keyshare/v1/register", json=body, headers=bearer(user), timeout=timeout
    )


def v1_get(url: str, user: str, key: str, timeout: float = 15):
    """POST /keyshare/v1/ (a share read) over HTTP as Telegram user ``user``."""
    import requests

    body = {"auth_type": "telegram", "public_key": key}
    return requests.post(url + "/keyshare/v1/", json=body, headers=bearer(user), timeout=timeout)
