"""What a sealed value is bound to: the associated data of its AES-GCM seal.

ksn1 and ksn2 values name only their row (``row``): a ciphertext copied into
another row fails, but a row handed to someone else by changing *other* rows
(``"2_wallets".user_id``, ``"2_users".user_auth_id``) still opens. ksn3 values
(``owner``) name everything that decides who receives the value, so a
database writer without the secret cannot re-point a share at another login:
the owner's ``auth_type`` and ``user_auth_id``, the ``wallet_id``, the
``curve_type`` and the wallet's public key; for the server keypair its row id
and public key.

The ksn3 associated data is JSON with sorted keys and no whitespace, after a
tag naming its kind: every field is quoted and escaped by JSON, so no two
different sets of fields encode to the same bytes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from json.encoder import encode_basestring_ascii

SHARE_TAG = "ksn3/key_share:"
KEYPAIR_TAG = "ksn3/server_keypair:"


@dataclass(frozen=True)
class Binding:
    row: str  # ksn1/ksn2 associated data: the row alone
    owner: str  # ksn3 associated data: the row and who receives it


def share_aad(wallet_id: str) -> str:
    """Associated data binding a ksn1/ksn2 key share ciphertext to its wallet row."""
    return f'"2_key_shares".wallet_id={wallet_id}'


def keypair_aad(keypair_id: str) -> str:
    """Associated data binding a ksn1/ksn2 server private key to its keypair row."""
    return f'"2_server_keypairs".keypair_id={keypair_id}'


def _encode(tag: str, fields: dict[str, str | None]) -> str:
    return tag + json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=True)


def _json_text(value: str | None) -> str:
    """One field's value as json.dumps(..., ensure_ascii=True) writes it
    (its own escaper): text or null."""
    if value is None:
        return "null"
    if not isinstance(value, str):  # json.dumps would write a number: never one of ours
        raise TypeError(f"a binding field is text or None, not {type(value).__name__}")
    return encode_basestring_ascii(value)


def share_binding(
    wallet_id: str,
    auth_type: str | None,
    user_auth_id: str | None,
    curve_type: str | None,
    public_key: bytes | None,
) -> Binding:
    """A key share's binding, from its owner's row as the database has it now.
    A missing owner (NULL) still encodes: it then matches no sealed value.

    The same text as ``_encode(SHARE_TAG, {...})`` (keys sorted), written
    out field by field: every share read and registration builds one, and
    json.dumps with sorted keys made it 4-6 µs (now 1.5-2.7);
    tests/unit/test_binding_encoding.py holds the two equal."""
    key = public_key.hex() if public_key is not None else None
    owner = (
        f'{SHARE_TAG}{{"auth_type":{_json_text(auth_type)}'
        f',"curve_type":{_json_text(curve_type)}'
        f',"public_key":{_json_text(key)}'
        f',"user_auth_id":{_json_text(user_auth_id)}'
        f',"wallet_id":{_json_text(wallet_id)}}}'
    )
    return Binding(share_aad(wallet_id), owner)


def keypair_binding(keypair_id: str, public_key: bytes | None) -> Binding:
    """The server keypair's binding: its row id and its public key."""
    fields = {
        "keypair_id": keypair_id,
        "public_key": public_key.hex() if public_key is not None else None,
    }
    return Binding(keypair_aad(keypair_id), _encode(KEYPAIR_TAG, fields))
