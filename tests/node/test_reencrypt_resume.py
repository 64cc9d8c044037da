"""`ksnode reencrypt` as a real process: SIGKILLed mid-way (twice) and run
again, nothing is lost or wrapped twice; two runs at once share the rows,
each row rewritten exactly once."""

from __future__ import annotations

import re
import signal
import time

import pytest

from shared.crypto.sealing import Cipher, key_id, share_aad
from tests.conftest import TEST_SECRET
from tests.support.sealing_helpers import (
    opened_values,
    seed_shares,
    spawn_ksnode,
    spec_ksn1_seal,
    spec_legacy_encrypt,
    stored_values,
    write_secret,
)

SECOND, THIRD = "second secret", "third secret"


@pytest.fixture(scope="module")
def originals(db) -> dict[str, str]:
    """wallet_id -> share, under the first secret in all three formats."""
    old = Cipher(TEST_SECRET)
    entries = seed_shares(db, 120, lambda share, _w: spec_legacy_encrypt(share, TEST_SECRET))
    entries += seed_shares(db, 100, lambda s, w: spec_ksn1_seal(s, TEST_SECRET, share_aad(w)))
    entries += seed_shares(db, 100, lambda s, w: old.encrypt(s, share_aad(w)))
    return {e.wallet_id: e.share for e in entries}


def count_with_head(db, head: str) -> int:
    return sum(v.startswith(head) for v in stored_values(db).values())


def assert_nothing_lost(db, cipher: Cipher, originals: dict[str, str]) -> None:
    values = opened_values(db, cipher)
    assert set(values) == set(originals)
    wrong = [w for w, v in values.items() if v != originals[w]]
    assert wrong == []  # a value wrapped twice would decrypt to a ciphertext


def wait_for(predicate, timeout: float):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


def test_killed_mid_way_then_resumed_loses_nothing(db, env_for, dbname, module_tmp, originals):
    second = write_secret(module_tmp, "second.txt", SECOND)
    env = env_for(
        dbname,
        ENCRYPTION_SECRET_PATH=str(second),
        ENCRYPTION_SECRET_PREVIOUS_PATHS=str(module_tmp / "encryption_secret.txt"),
    )
    rotated = Cipher(SECOND, [TEST_SECRET])
    head = f"ksn3.{key_id(SECOND)}."
    total = len(originals)
    for threshold in (10, 120):
        run = spawn_ksnode(env, "reencrypt", "--yes", "--no-backup", "--batch-size", "5")
        try:
            assert wait_for(lambda t=threshold: count_with_head(db, head) >= t, 120)
        finally:
            run.send_signal(signal.SIGKILL)
            run.communicate(timeout=30)
        assert run.returncode == -signal.SIGKILL
        done = count_with_head(db, head)
        assert threshold <= done < total  # killed mid-way
        assert_nothing_lost(db, rotated, originals)

    run = spawn_ksnode(env, "reencrypt", "--yes", "--no-backup", "--batch-size", "5")
    out, err = run.communicate(timeout=300)
    assert run.returncode == 0, out + err
    rewritten = int(re.search(r"rewritten: (\d+)", out).group(1))
    assert rewritten == total - done  # (this database has no server keypair)
    assert count_with_head(db, head) == total
    assert_nothing_lost(db, Cipher(SECOND), originals)


def test_two_runs_at_once_rewrite_each_row_once(db, env_for, dbname, module_tmp, originals):
    third = write_secret(module_tmp, "third.txt", THIRD)
    env = env_for(
        dbname,
        ENCRYPTION_SECRET_PATH=str(third),
        ENCRYPTION_SECRET_PREVIOUS_PATHS=f"{module_tmp / 'second.txt'},"
        f"{module_tmp / 'encryption_secret.txt'}",
    )
    runs = [
        spawn_ksnode(env, "reencrypt", "--yes", "--no-backup", "--batch-size", "2")
        for _ in range(2)
    ]
    outputs = [run.communicate(timeout=300) for run in runs]
    for run, (out, err) in zip(runs, outputs, strict=True):
        assert run.returncode == 0, out + err
    rewritten = [int(re.search(r"rewritten: (\d+)", out).group(1)) for out, _ in outputs]
    assert sum(rewritten) == len(originals)  # every share once
    assert min(rewritten) > 0  # both runs took part
    assert count_with_head(db, f"ksn3.{key_id(THIRD)}.") == len(originals)
    assert_nothing_lost(db, Cipher(THIRD), originals)
