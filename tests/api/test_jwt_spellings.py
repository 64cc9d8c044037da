"""A signed Google or Auth0 token is accepted in its one canonical spelling
only (unpadded base64url, zero trailing bits). PyJWT alone also accepts
padding and other trailing bits, and commit-reveal binds a session to the
hash of the token's text: a co-node operator holding a user's committed
token could re-spell it, and the copy would pass as a token never committed
here (a bare read in ``optional`` mode, or its own commit and reveal in
``required`` mode). Real HTTP, the fake provider's real RS256 tokens."""

from __future__ import annotations

import base64
import hashlib
import uuid

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from services.api.auth.auth0 import Auth0Verifier
from services.api.auth.base import AuthFailure
from services.api.auth.google import GoogleVerifier
from services.api.auth.jwks import is_canonical_jwt
from services.api.auth.providers import http_session
from shared.config import Config
from tests.support.commit_reveal import raw_public, start_cr_node
from tests.support.fakes.idp import idp_fixture  # noqa: F401 - the module's `idp` fixture
from tests.support.keyshare_helpers import ed_key, secp_key, share_hex

ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


def trailing_bits_set(token: str) -> str:
    """The same bytes, spelled with non-zero unused bits in the last character
    of the signature (its length is not a multiple of 4 for RS256-2048)."""
    head, last = token[:-1], token[-1]
    spelled = head + ALPHABET[ALPHABET.index(last) | 1]
    assert spelled != token
    signature = spelled.rsplit(".", 1)[1]
    decode = base64.urlsafe_b64decode
    pad = "=" * (-len(signature) % 4)
    assert decode(signature + pad) == decode(token.rsplit(".", 1)[1] + pad)
    return spelled


def variants(token: str) -> list[str]:
    header, payload, signature = token.split(".")
    return [
        token + "==",
        f"{header}=.{payload}.{signature}" if len(header) % 4 == 3 else token + "=",
        trailing_bits_set(token),
    ]


def test_only_the_canonical_spelling_is_canonical(idp):
    token = idp.token(idp.google_claims("1"))
    assert is_canonical_jwt(token)
    for variant in variants(token):
        assert not is_canonical_jwt(variant), variant
    for broken in ("", "a.b", "a.b.c.d", "a!.b.c", "abcde.b.c", token.replace(".", "..", 1)):
        assert not is_canonical_jwt(broken)


def test_the_verifiers_refuse_a_re_spelled_token(idp):
    config = Config(**idp.config_overrides())
    google, auth0 = GoogleVerifier(config, http_session()), Auth0Verifier(config, http_session())
    g_token, a_token = idp.token(idp.google_claims("7")), idp.token(idp.auth0_claims("a@b.c"))
    assert google.verify(g_token)["sub"] == "7" and auth0.verify(a_token)["email"] == "a@b.c"
    for variant in variants(g_token):
        with pytest.raises(AuthFailure, match="^Invalid or malformed token$"):
            google.verify(variant)
    for variant in variants(a_token):
        with pytest.raises(AuthFailure, match="^Invalid token format$"):
            auth0.verify(variant)


@pytest.fixture(scope="module", params=["optional", "required"])
def node(request, start_api, idp):
    return start_cr_node(start_api, request.param, **idp.config_overrides())


def signed(
    key: Ed25519PrivateKey,
    node_pubkey: str,
    session: str,
    token: str,
    api: str,
    operation: str = "sign_in",
) -> str:
    message = node_pubkey + session + "google" + token + operation + api
    return key.sign(hashlib.sha256(message.encode()).digest()).hex()


def commit(node, key: Ed25519PrivateKey, token: str, operation: str = "sign_in") -> str:
    session = str(uuid.uuid4())
    r = node.post(
        "/keyshare/v2/commit",
        json={
            "session_id": session,
            "operation_type": operation,
            "client_ephemeral_pubkey": raw_public(key).hex(),
            "id_token_hash": hashlib.sha256(("google" + token).encode()).hexdigest(),
        },
    )
    assert r.status_code == 200, r.text
    return session


def reveal_get(node, key: Ed25519PrivateKey, session: str, token: str, read: dict):
    """A v2 get revealing ``token`` in ``session``, signed with ``key``."""
    return node.post(
        "/keyshare/v2",
        json={
            **read,
            "cr_session_id": session,
            "cr_signature": signed(key, node.pubkey, session, token, "get_key_shares"),
        },
        headers={"Authorization": f"Bearer {token}"},
    )


def test_a_co_node_operator_gets_nothing_with_a_re_spelled_committed_token(node, idp):
    sub = str(uuid.uuid4().int)[:20]
    token = idp.token(idp.google_claims(sub))
    auth = {"Authorization": f"Bearer {token}"}
    keys = {"secp256k1": secp_key(), "ed25519": ed_key()}
    wallets = {curve: {"public_key": key, "share": share_hex()} for curve, key in keys.items()}
    # Signed up with an earlier login of the same account (another token).
    earlier = idp.token(idp.google_claims(sub, nonce="sign-up"))
    body: dict = {"auth_type": "google", "wallets": wallets}
    if node.mode == "required":
        sign_up_key = Ed25519PrivateKey.generate()
        session = commit(node, sign_up_key, earlier, "sign_up")
        body["cr_session_id"] = session
        body["cr_signature"] = signed(
            sign_up_key, node.pubkey, session, earlier, "register", "sign_up"
        )
    r = node.post(
        "/keyshare/v2/register", json=body, headers={"Authorization": f"Bearer {earlier}"}
    )
    assert r.status_code == 200, r.text
    # The user commits the token here (before revealing it anywhere).
    user_key = Ed25519PrivateKey.generate()
    user_session = commit(node, user_key, token)
    read = {"auth_type": "google", "wallets": keys}
    # The exact token, bare: refused as committed (or as required).
    r = node.post("/keyshare/v2", json=read, headers=auth)
    assert (r.status_code, r.json()["code"]) == (400, "INVALID_REQUEST")
    for variant in variants(token):
        rogue = {"Authorization": f"Bearer {variant}"}
        # bare, on v2 and v1
        for path, body in (
            ("/keyshare/v2", read),
            ("/keyshare/v1", {"auth_type": "google", "public_key": keys["secp256k1"]}),
        ):
            r = node.post(path, json=body, headers=rogue)
            assert r.status_code in (400, 401) and "data" not in r.json(), r.text
        # the rogue's own commit of the variant, revealed with its own key
        rogue_key = Ed25519PrivateKey.generate()
        r = reveal_get(node, rogue_key, commit(node, rogue_key, variant), variant, read)
        assert (r.status_code, r.json()["code"]) == (401, "UNAUTHORIZED"), r.text
        assert "data" not in r.json()
    # The user's own reveal still gets the shares.
    r = reveal_get(node, user_key, user_session, token, read)
    assert r.status_code == 200, r.text
    assert {c: v["share"] for c, v in r.json()["data"].items()} == {
        c: w["share"] for c, w in wallets.items()
    }
