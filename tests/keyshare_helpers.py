"""Small builders shared by the key share API tests."""

from __future__ import annotations

import os

from tests.fakes.telegram import bearer


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
