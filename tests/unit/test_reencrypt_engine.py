"""The reencrypt engine on its own: a value that does not decrypt is left as
it is and reported while the rest are rewritten; --max-rate holds the pace."""

from __future__ import annotations

import time

from shared.crypto.sealing import Cipher, key_id, share_aad
from shared.keys.reencrypt import Reencryptor
from tests.conftest import TEST_SECRET
from tests.support.sealing_helpers import ksnode, opened_values, seed_shares, stored_values

NEW = "engine test secret"


def test_an_undecryptable_value_is_reported_and_the_rest_rewritten(db, env_for, dbname, module_tmp):
    old = Cipher(TEST_SECRET)
    good = seed_shares(db, 5, lambda s, w: old.encrypt(s, share_aad(w)))
    bad = seed_shares(db, 1, lambda s, w: Cipher("some other secret").encrypt(s, share_aad(w)))
    bad += seed_shares(db, 1, lambda _s, _w: "not a ciphertext at all")
    new_file = module_tmp / "engine_new.txt"
    new_file.write_text(NEW)
    env = env_for(
        dbname,
        ENCRYPTION_SECRET_PATH=str(new_file),
        ENCRYPTION_SECRET_PREVIOUS_PATHS=str(module_tmp / "encryption_secret.txt"),
    )
    # The unknown key id is refused before anything is touched.
    before = stored_values(db)
    result = ksnode(env, "reencrypt", "--yes", "--no-backup")
    assert result.returncode == 1 and "1 key share under key id" in result.stderr
    assert stored_values(db) == before

    # With the garbage value only, the engine rewrites the rest and lists it.
    with db.transaction() as cur:
        cur.execute('DELETE FROM "2_key_shares" WHERE wallet_id = %s', (bad[0].wallet_id,))
    outcome = Reencryptor(db, Cipher(NEW, [TEST_SECRET]), batch_size=2).run()
    assert list(outcome.failed) and not outcome.complete
    values = stored_values(db)
    assert values[bad[1].wallet_id] == "not a ciphertext at all"
    head = f"ksn3.{key_id(NEW)}."
    assert all(values[e.wallet_id].startswith(head) for e in good)
    with db.transaction() as cur:
        cur.execute('DELETE FROM "2_key_shares" WHERE wallet_id = %s', (bad[1].wallet_id,))
    opened = opened_values(db, Cipher(NEW))
    assert all(opened[e.wallet_id] == e.share for e in good)


def test_max_rate_holds_the_pace(db):
    current = Cipher(NEW)
    seed_shares(db, 30, lambda s, w: current.encrypt(s, share_aad(w)))
    started = time.monotonic()
    outcome = Reencryptor(db, Cipher("a later secret", [NEW]), batch_size=5, max_rate=60).run()
    elapsed = time.monotonic() - started
    assert outcome.complete and outcome.rewritten >= 30
    assert elapsed >= (outcome.rewritten - 5) / 60  # the last batch needs no wait


def test_pending_from_the_usage_count_matches_a_count_of_the_table(db):
    """`ksnode reencrypt` prints what is pending from the usage count it made
    for the key check, instead of scanning the tables again: the two agree
    for every mix of formats and both targets."""
    from shared.keys.keycheck import read_usage
    from shared.keys.reencrypt import CURRENT, LEGACY, count_pending, pending_in
    from tests.support.sealing_helpers import spec_legacy_encrypt

    old, current = Cipher(TEST_SECRET), Cipher(NEW, [TEST_SECRET])
    seed_shares(db, 3, lambda s, w: old.encrypt(s, share_aad(w)))  # ksn2, previous key
    seed_shares(db, 2, lambda s, w: current.encrypt(s, share_aad(w)))  # ksn2, current key
    seed_shares(db, 2, lambda s, _w: spec_legacy_encrypt(s, TEST_SECRET))
    with db.cursor() as cur:
        usage = read_usage(cur)
    assert pending_in(usage, current, CURRENT) == count_pending(db, current, CURRENT)
    single = Cipher(NEW)
    assert pending_in(usage, single, LEGACY) == count_pending(db, single, LEGACY)
    assert sum(pending_in(usage, current, CURRENT).values()) >= 5


def test_max_rate_does_not_burst_to_make_up_for_a_pause(db):
    """Time lost (here a 1.5 s stall after the first batch, as when rows are
    locked by others or the process is paused) is not made up for with a
    burst above --max-rate."""
    current = Cipher("a pause secret")
    seed_shares(db, 60, lambda s, w: current.encrypt(s, share_aad(w)))
    marks: list[tuple[float, int]] = []

    def progress(rewritten: int, _failed: int) -> None:
        marks.append((time.monotonic(), rewritten))
        if len(marks) == 1:
            time.sleep(1.5)

    target = Cipher("after the pause", ["a pause secret"])
    outcome = Reencryptor(db, target, batch_size=5, max_rate=40, progress=progress).run()
    assert outcome.rewritten >= 60
    resumed, at_resume = marks[0][0] + 1.5, marks[0][1]
    within = [rows for t, rows in marks if t <= resumed + 0.5]
    burst = within[-1] - at_resume
    print(f"rows in the half second after the stall: {burst} (max rate 40/s)")
    # 0.5 s at 40 rows/s is 20 rows, plus a batch either side; a catch-up
    # burst would have rewritten the ~60 rows the stall "owed" at once.
    assert burst <= 35, marks
