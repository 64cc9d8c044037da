"""Spec commit-reveal §10: both test vectors, through the node's own hashing,
signing and verifying functions, checked with cryptography's Ed25519."""

import hashlib

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from services.api.routes.commit import sign_node_pubkey
from services.api.web.commit_reveal import signed_digest, token_hash
from tests.support.commit_reveal import raw_public, reveal_signature

NODE_SEED = hashlib.sha256(b"ksnode-cr-vector-node").digest()
NODE_PUBKEY = "eeb5341d2d014f5d29759e1cb78d09fdc9ca7589b41d08aa87c06b4afce5a9c7"
NODE_SIGNATURE = (
    "32bef86317dec45306adb0040725bd79149b5fb4050d8b210374dfa5ef85ef58"
    "a9a62522e82fad599258066cbe419aa2aa75de16b9284cb7ab69639cdbb6e909"
)
VECTORS = [
    dict(
        label=b"ksnode-cr-vector-1-client",
        client_pubkey="61889019e8f7757c1236890e5cbbb447eb68bfd7342098b63699eafd17f43179",
        session_id="550e8400-e29b-41d4-a716-446655440000",
        auth_type="google",
        token="eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiIxMjMifQ.c2lnbmF0dXJl",
        operation="sign_in",
        api="get_key_shares",
        id_token_hash="d8ca789449613c908b82c05033e2a6317295a79136d8d8dd2440777f829eceae",
        digest="3b8a9c53338971f4575807d2042f9d9c18bd4628669857abfaefa6c5670b9ed3",
        signature="0c04c16013555802cfa161a81aa2f24fa2c3a44c114685fabbcde0f52ab511a7"
        "302b226862b94e383d16f25813bccbd9d73c5f5b42f53dec409bd8b40d038903",
    ),
    dict(
        label=b"ksnode-cr-vector-2-client",
        client_pubkey="603f6abbc42107d35c4fbafb55c9c8c1fe8e4efebe800527f5598e882115351c",
        session_id="0b7f3c1e-9a4d-4e2b-8f6a-2c5d7e9f1a3b",
        auth_type="telegram",
        token='{"id": 1234567890123, "first_name": "Ann\u00e9", "auth_date": 1769600000, "hash": "00"}',
        operation="add_ed25519",
        api="register_ed25519",
        id_token_hash="8dbd9b3ee79606981c5172899cbcc0f85aebf53b6cbaabb4450d076444080b62",
        digest="1955f0fe426db4c560450ce1a6c9be00839c03556b0533fec5c1bdd401c4a45e",
        signature="ea6d76b88c3761c04d3e6e074fdb906ea9c3b4b6842b93ec1bdd8e6d64c4daad"
        "85252be19d92be51ed158425ecfd6694be18746a195553e99bbad94848f69107",
    ),
]


def test_node_key_and_commit_signature():
    private = Ed25519PrivateKey.from_private_bytes(NODE_SEED)
    assert raw_public(private).hex() == NODE_PUBKEY
    assert sign_node_pubkey(NODE_SEED, NODE_PUBKEY) == NODE_SIGNATURE
    digest = hashlib.sha256(NODE_PUBKEY.encode()).digest()
    private.public_key().verify(bytes.fromhex(NODE_SIGNATURE), digest)


@pytest.mark.parametrize("v", VECTORS, ids=["v1-google", "v2-telegram"])
def test_reveal_vector(v):
    client = Ed25519PrivateKey.from_private_bytes(hashlib.sha256(v["label"]).digest())
    assert raw_public(client).hex() == v["client_pubkey"]
    assert token_hash(v["auth_type"], v["token"]) == v["id_token_hash"]
    args = (v["session_id"], v["auth_type"], v["token"], v["operation"], v["api"])
    digest = signed_digest(NODE_PUBKEY, *args)
    assert digest.hex() == v["digest"]
    assert reveal_signature(client, NODE_PUBKEY, *args) == v["signature"]
    client.public_key().verify(bytes.fromhex(v["signature"]), digest)
    # bound to the node: the same signature over an all-zero node key fails
    with pytest.raises(InvalidSignature):
        client.public_key().verify(bytes.fromhex(v["signature"]), signed_digest("00" * 32, *args))
