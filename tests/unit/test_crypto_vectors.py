"""Encryption at rest: the reference's vectors (spec §15) and our envelope."""

import base64

import pytest

from shared.crypto.sealing import Cipher, DecryptError, keypair_aad, legacy_encrypt, share_aad

SECRET = "test_enc_secret"
SALT = bytes(range(16))
IV = bytes.fromhex("a0a1a2a3a4a5a6a7a8a9aaab")
SHARE_HEX = bytes(range(64)).hex()
STORED = (
    "AAECAwQFBgcICQoLDA0OD6ChoqOkpaanqKmqq3TaXryAPhBw1A6YdPmiJdF7u4pJWcQw+P6tYBRELuZNZySzBF6Ao"
    "evoE/ueDGFKejR/I71NdNESSvQnLmcl5Dt/5ZIemWlb/hoyhJAE0gNfXVtE+/zAfjNKZj0rL4NaYFOPp0mRJsr5Nz"
    "MGvcrHe0JpWaKtBfVx0hm1HoS7MaHRmtxfF5WB3Of4GkTR7fWYWw=="
)
SEED_HEX = "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60"
STORED_SEED = (
    "AAECAwQFBgcICQoLDA0OD6ChoqOkpaanqKmqq3MAR0lQ7HbNNywilaKp2Xpy74xJC8c5r6v/NkVBeeBKNX27CVqA97"
    "3hQq6ZDmcZKDF7JrUfc9YYTKIlKWAq5DV57ZBFyWtarxoy1JEC0QQJ"
)


def test_legacy_encrypt_matches_reference_vector():
    assert legacy_encrypt(SHARE_HEX, SECRET, salt=SALT, iv=IV) == STORED
    assert len(STORED) == 232


def test_legacy_share_vector_decrypts():
    assert Cipher(SECRET).decrypt(STORED.encode("ascii"), share_aad("any")) == SHARE_HEX


def test_legacy_private_key_vector_decrypts():
    assert Cipher(SECRET).decrypt(STORED_SEED, keypair_aad("any")) == SEED_HEX


def test_legacy_wrong_secret_fails():
    with pytest.raises(DecryptError):
        Cipher("other secret").decrypt(STORED, share_aad("w"))


def test_legacy_tampered_ciphertext_fails():
    raw = bytearray(base64.b64decode(STORED))
    raw[-1] ^= 1
    with pytest.raises(DecryptError):
        Cipher(SECRET).decrypt(base64.b64encode(bytes(raw)).decode(), share_aad("w"))


def test_envelope_round_trip_and_randomised():
    cipher = Cipher(SECRET)
    a = cipher.encrypt(SHARE_HEX, share_aad("w1"))
    b = cipher.encrypt(SHARE_HEX, share_aad("w1"))
    assert a != b and a.startswith(cipher.current_head)
    assert cipher.decrypt(a, share_aad("w1")) == SHARE_HEX


def test_envelope_bound_to_its_row():
    cipher = Cipher(SECRET)
    stored = cipher.encrypt(SHARE_HEX, share_aad("wallet-a"))
    with pytest.raises(DecryptError):
        cipher.decrypt(stored, share_aad("wallet-b"))


def test_envelope_tamper_detected():
    cipher = Cipher(SECRET)
    stored = cipher.encrypt(SHARE_HEX, share_aad("w"))
    head = cipher.current_head
    raw = bytearray(base64.urlsafe_b64decode(stored[len(head) :]))
    raw[20] ^= 0x80
    with pytest.raises(DecryptError):
        cipher.decrypt(head + base64.urlsafe_b64encode(bytes(raw)).decode(), share_aad("w"))


def test_envelope_wrong_secret_fails():
    stored = Cipher(SECRET).encrypt(SHARE_HEX, share_aad("w"))
    with pytest.raises(DecryptError):
        Cipher(SECRET + "\n").decrypt(stored, share_aad("w"))


@pytest.mark.parametrize("value", ["", "ünïcödé ✓", "x" * 10_000])
def test_round_trip_properties(value):
    cipher = Cipher(SECRET)
    assert cipher.decrypt(cipher.encrypt(value, "aad"), "aad") == value
    assert cipher.decrypt(legacy_encrypt(value, SECRET), "aad") == value


def test_garbage_is_a_decrypt_error_not_a_crash():
    cipher = Cipher(SECRET)
    for junk in ["", "ksn1.", "ksn1.!!!", "AAAA", b"\xff\xfe", "ksn1." + "A" * 40]:
        with pytest.raises(DecryptError):
            cipher.decrypt(junk, "aad")


def test_errors_never_contain_the_secret():
    try:
        Cipher("super-secret-value").decrypt(STORED, "aad")
    except DecryptError as exc:
        assert "super-secret-value" not in str(exc)


# A secret file that is not UTF-8 (spec §8.2: the reference reads it with
# fs.readFileSync(path, "utf8"), which turns each invalid sequence into
# U+FFFD) and a share the reference's scheme encrypted under it, computed
# with Node 22's fs and crypto: a truncated 4-byte sequence, a lone
# continuation byte, an encoded surrogate, bytes 0xFE/0xFF.
NOT_UTF8_SECRET = bytes.fromhex("10fffeeda080f09f986162c328e282f49080807a")
NOT_UTF8_STORED = (
    "L4W7pmFu14RPgsIqblSGoiNpYSAs0dxRUnvE/L72H5ZjhaZy2mAZCs8LjICmBdJHfiiZDr2+rFScs7XComtnljDM"
    "Va9paNgPPCvaGEjiRftt8BsPEprek9OkQ7omiYtPgPrSEr9t6kKZcAiMIiJiefqr11XtjKt7J0WPkuqD0r36DE0m"
    "DcYkBddmq+g3ygHa4S0qPe0oly7/+VATDar9DcqpZWL1oNLUqNBFxQ=="
)


def test_a_secret_file_that_is_not_utf8_reads_as_the_reference_reads_it(tmp_path, caplog):
    from shared.crypto.secretfiles import load_cipher, load_secret

    path = tmp_path / "secret"
    path.write_bytes(NOT_UTF8_SECRET)
    assert len(load_secret(path)) == 17  # Node's String length of the same file
    assert load_cipher(path).decrypt(NOT_UTF8_STORED, share_aad("any")) == SHARE_HEX
    assert "secret.not_utf8" in {getattr(r, "event", None) for r in caplog.records}
