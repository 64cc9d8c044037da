"""Key versions: a ksn2 value names its secret's key id; previous secrets stay
readable; ksn1 and legacy values written before stay readable."""

import pytest

from shared.crypto.sealing import (
    Cipher,
    DecryptError,
    SecretError,
    UnknownKeyId,
    key_id,
    legacy_encrypt,
    share_aad,
    value_format,
)
from tests.support.sealing_helpers import spec_ksn1_seal, spec_legacy_decrypt

OLD, NEW = "old secret", "new secret\n"
SHARE = bytes(range(64)).hex()


def test_key_id_is_stable_short_hex_and_not_the_secret():
    kid = key_id(OLD)
    assert kid == key_id(OLD) and kid != key_id(NEW)
    assert len(kid) == 12 and int(kid, 16) >= 0
    assert OLD.encode().hex()[:12] != kid and "old" not in kid


def test_envelope_names_the_current_key_id():
    cipher = Cipher(NEW, [OLD])
    stored = cipher.encrypt(SHARE, share_aad("w"))
    assert stored.startswith(f"ksn2.{key_id(NEW)}.")
    assert value_format(stored) == ("ksn2", key_id(NEW))
    assert cipher.open(stored, share_aad("w")) == (key_id(NEW), SHARE)


def test_previous_secret_values_stay_readable_in_every_format():
    old = Cipher(OLD)
    values = [
        old.encrypt(SHARE, share_aad("w")),
        spec_ksn1_seal(SHARE, OLD, share_aad("w")),
        legacy_encrypt(SHARE, OLD),
    ]
    rotated = Cipher(NEW, [OLD])
    for stored in values:
        assert rotated.open(stored, share_aad("w")) == (key_id(OLD), SHARE)
    without_old = Cipher(NEW)
    for stored in values:
        with pytest.raises(DecryptError):
            without_old.decrypt(stored, share_aad("w"))


def test_unknown_key_id_is_named_in_the_error():
    stored = Cipher(OLD).encrypt(SHARE, share_aad("w"))
    with pytest.raises(UnknownKeyId) as info:
        Cipher(NEW).decrypt(stored, share_aad("w"))
    assert info.value.key_id == key_id(OLD)
    assert OLD not in str(info.value) and key_id(OLD) in str(info.value)


def test_ksn1_values_written_before_key_versions_decrypt():
    stored = spec_ksn1_seal(SHARE, OLD, share_aad("w"))
    assert value_format(stored) == ("ksn1", None)
    assert Cipher(OLD).decrypt(stored, share_aad("w")) == SHARE
    with pytest.raises(DecryptError):
        Cipher(OLD).decrypt(stored, share_aad("other row"))


def test_legacy_output_is_the_reference_format_under_the_current_secret():
    cipher = Cipher(NEW, [OLD])
    salt = bytes(16)
    a, b = cipher.encrypt_legacy(SHARE, salt), cipher.encrypt_legacy(SHARE, salt)
    assert a != b and value_format(a) == ("legacy", None) and len(a) == 232
    assert spec_legacy_decrypt(a, NEW) == SHARE == spec_legacy_decrypt(b, NEW)


def test_the_current_secret_listed_as_previous_is_refused():
    with pytest.raises(SecretError, match="is the current secret"):
        Cipher(OLD, [OLD])
    with pytest.raises(SecretError, match="listed twice"):
        Cipher(NEW, [OLD, OLD])


def test_a_tampered_key_id_does_not_decrypt():
    cipher = Cipher(NEW, [OLD])
    stored = cipher.encrypt(SHARE, share_aad("w"))
    swapped = f"ksn2.{key_id(OLD)}." + stored[len(cipher.current_head) :]
    with pytest.raises(DecryptError):
        cipher.decrypt(swapped, share_aad("w"))
    with pytest.raises(DecryptError):
        cipher.decrypt("ksn2.short.AAAA", share_aad("w"))


def test_previous_paths_setting_is_a_comma_separated_list_of_absolute_files(tmp_path):
    from pathlib import Path

    from shared.config import child_environment, load_config

    config = load_config(
        {"ENCRYPTION_SECRET_PREVIOUS_PATHS": f"{tmp_path}/a.txt, relative.txt,,", "HOME": "/h"}
    )
    assert config.encryption_secret_previous_paths == (
        tmp_path / "a.txt",
        Path("relative.txt").absolute(),
    )
    assert child_environment(config)["ENCRYPTION_SECRET_PREVIOUS_PATHS"] == (
        f"{tmp_path / 'a.txt'},{Path('relative.txt').absolute()}"
    )
    assert load_config({}).encryption_secret_previous_paths == ()


def test_a_missing_previous_secret_file_is_a_clear_secret_error(tmp_path):
    from shared.crypto.secretfiles import load_cipher

    current = tmp_path / "current.txt"
    current.write_text(NEW)
    with pytest.raises(SecretError, match="Failed to load encryption secret: .*gone.txt"):
        load_cipher(current, [tmp_path / "gone.txt"])
    (tmp_path / "old.txt").write_text(OLD)
    assert load_cipher(current, [tmp_path / "old.txt"]).previous_key_ids == (key_id(OLD),)
