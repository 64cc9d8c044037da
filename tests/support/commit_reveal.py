"""A commit-reveal client for tests: real Ed25519 keys (cryptography) and
the bytes of spec commit-reveal §3-§4, written from the spec, not from the
node's code."""

from __future__ import annotations

import hashlib
import uuid

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from tests.support.keyshare_helpers import Wallet


def raw_public(private: Ed25519PrivateKey) -> bytes:
    return private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


def token_hash(auth_type: str, token: str) -> str:
    return hashlib.sha256((auth_type + token).encode("utf-8")).hexdigest()


def reveal_signature(
    private: Ed25519PrivateKey,
    node_pubkey: str,
    session_id: str,
    auth_type: str,
    token: str,
    operation: str,
    api: str,
) -> str:
    message = node_pubkey + session_id + auth_type + token + operation + api
    return private.sign(hashlib.sha256(message.encode("utf-8")).digest()).hex()


class CrSession:
    """One user's session at one node: a fixed token (Telegram login), a fresh
    ephemeral key and session id."""

    def __init__(
        self,
        api,
        wallet: Wallet,
        operation: str,
        node_pubkey: str,
        *,
        headers: dict[str, str] | None = None,
        key: Ed25519PrivateKey | None = None,
    ):
        self.api, self.wallet = api, wallet
        self.operation, self.node_pubkey = operation, node_pubkey
        self.key = key or Ed25519PrivateKey.generate()
        self.session_id = str(uuid.uuid4())
        # built once: the token must not change during the session
        self.headers = headers or wallet.headers
        self.token = self.headers["Authorization"][len("Bearer ") :]

    @property
    def token_hash(self) -> str:
        return token_hash("telegram", self.token)

    def commit_body(self, **overrides) -> dict:
        body = {
            "session_id": self.session_id,
            "operation_type": self.operation,
            "client_ephemeral_pubkey": raw_public(self.key).hex(),
            "id_token_hash": self.token_hash,
        }
        body.update(overrides)
        return body

    def commit(self, path: str = "/keyshare/v2/commit", **overrides):
        return self.api.post(path, json=self.commit_body(**overrides))

    def signature(self, api_name: str, key: Ed25519PrivateKey | None = None) -> str:
        return reveal_signature(
            key or self.key,
            self.node_pubkey,
            self.session_id,
            "telegram",
            self.token,
            self.operation,
            api_name,
        )

    def call(self, path: str, api_name: str, body: dict, **fields):
        full = {
            "auth_type": "telegram",
            "cr_session_id": self.session_id,
            "cr_signature": self.signature(api_name),
            **body,
            **fields,
        }
        return self.api.post(path, json=full, headers=self.headers)

    def bare(self, path: str, body: dict):
        """The same token without cr_* fields (an old client, or a replay)."""
        return self.api.post(path, json={"auth_type": "telegram", **body}, headers=self.headers)


def start_cr_node(start_api, mode: str, **overrides):
    """An API server in COMMIT_REVEAL ``mode``, carrying ``mode`` and its
    Ed25519 ``pubkey`` (what a client signs into each reveal)."""
    server = start_api(commit_reveal=mode, **overrides)
    server.mode = mode
    server.pubkey = server.get("/status").json()["ks_node_public_key"]
    return server


def expire_and_clean_up(db, session_id: str) -> None:
    """Make the session two hours past its expiry, then run housekeeping,
    which must remove it (and keep its hash reserved, its login bound)."""
    from shared.store import cr_sessions

    with db.cursor() as cur:
        cur.execute(
            "UPDATE \"2_commit_reveal_sessions\" SET expires_at = now() - interval '2 hours'"
            " WHERE session_id = %s",
            (session_id,),
        )
    with db.transaction() as cur:
        removed, _, _, _ = cr_sessions.housekeep(cur)
    assert removed >= 1


def v1_user(api) -> Wallet:
    """A Telegram user with a secp256k1 wallet registered through v1 (a route
    commit-reveal does not protect), its key and share on the wallet."""
    from tests.support.keyshare_helpers import secp_key, share_hex

    wallet = Wallet(api)
    wallet.secp, wallet.secp_share = secp_key(), share_hex()
    r = wallet.post(
        "/keyshare/v1/register",
        {"curve_type": "secp256k1", "public_key": wallet.secp, "share": wallet.secp_share},
    )
    assert r.status_code == 200, r.text
    return wallet
