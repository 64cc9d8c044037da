"""`ksnode reencrypt` while registrations, reads and reshares run against the
API: no request fails, no share comes back wrong, and every row (including
those registered meanwhile) ends under the current secret."""

from __future__ import annotations

import random
import threading
import time

import pytest

from shared.crypto.sealing import Cipher, key_id, share_aad
from tests.conftest import TEST_SECRET
from tests.support.keyshare_helpers import Wallet, secp_key, share_hex
from tests.support.sealing_helpers import (
    Seeded,
    all_served,
    seed_shares,
    spawn_ksnode,
    spec_legacy_encrypt,
    stored_values,
    write_secret,
)

NEW = "the secret after the rotation"
LOAD_THREADS = 4
MAX_SECONDS = 180


@pytest.fixture(scope="module")
def rotated_api(config, db):
    """The API as the operator runs it mid-rotation: new secret current, old previous."""
    from services.api.app import create_app
    from tests.conftest import ApiServer, build_node_context

    cipher = Cipher(NEW, [TEST_SECRET])
    server = ApiServer(create_app(build_node_context(config, db, cipher))).start()
    yield server
    server.stop()


class Load:
    """Registrations, reads and reshares in threads until stopped."""

    def __init__(self, api, entries: list[Seeded]):
        self.api = api
        self.entries = list(entries)
        self.lock = threading.Lock()
        self.errors: list[str] = []
        self.mismatches: list[str] = []
        self.requests = 0
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self.run, daemon=True) for _ in range(LOAD_THREADS)]

    def run(self):
        rng = random.Random()
        deadline = time.monotonic() + MAX_SECONDS
        while not self.stop.is_set() and time.monotonic() < deadline:
            action = rng.random()
            try:
                if action < 0.25:
                    self.register()
                elif action < 0.4:
                    self.reshare(rng)
                else:
                    self.read(rng)
            except Exception as exc:  # noqa: BLE001 - counted and asserted on
                self.errors.append(repr(exc))

    def record(self, r, what: str) -> bool:
        with self.lock:
            self.requests += 1
        if r.status_code != 200:
            self.errors.append(f"{what}: {r.status_code} {r.text[:200]}")
            return False
        return True

    def register(self):
        wallet, key, share = Wallet(self.api), secp_key(), share_hex()
        r = wallet.post(
            "/keyshare/v1/register", {"curve_type": "secp256k1", "public_key": key, "share": share}
        )
        if self.record(r, "register"):
            with self.lock:
                self.entries.append(Seeded(wallet.user_id, key, share, "", ""))

    def pick(self, rng) -> Seeded:
        with self.lock:
            return rng.choice(self.entries)

    def read(self, rng):
        entry = self.pick(rng)
        r = Wallet(self.api, entry.user_id).post("/keyshare/v1/", {"public_key": entry.public_key})
        if self.record(r, "read") and r.json()["data"]["share"] != entry.share:
            self.mismatches.append(entry.public_key)

    def reshare(self, rng):
        entry = self.pick(rng)
        body = {"curve_type": "secp256k1", "public_key": entry.public_key, "share": entry.share}
        self.record(Wallet(self.api, entry.user_id).post("/keyshare/v1/reshare", body), "reshare")


def test_reencrypt_under_load_has_no_errors_and_no_mismatches(
    rotated_api, db, env_for, dbname, module_tmp
):
    old = Cipher(TEST_SECRET)
    entries = seed_shares(db, 40, lambda share, _w: spec_legacy_encrypt(share, TEST_SECRET))
    entries += seed_shares(db, 260, lambda share, w: old.encrypt(share, share_aad(w)))
    new_file = write_secret(module_tmp, "new.txt", NEW)
    env = env_for(
        dbname,
        ENCRYPTION_SECRET_PATH=str(new_file),
        ENCRYPTION_SECRET_PREVIOUS_PATHS=str(module_tmp / "encryption_secret.txt"),
    )
    load = Load(rotated_api, entries)
    for thread in load.threads:
        thread.start()
    try:
        run = spawn_ksnode(env, "reencrypt", "--yes", "--no-backup", "--batch-size", "10")
        out, err = run.communicate(timeout=MAX_SECONDS)
    finally:
        load.stop.set()
        for thread in load.threads:
            thread.join(timeout=60)
    assert run.returncode == 0, out + err
    assert load.requests > 50  # the load really ran alongside
    print(f"load: {load.requests} requests during the run, {len(load.entries)} shares")
    assert load.errors == []
    assert load.mismatches == []
    # Rows registered during the run are under the new secret too.
    head = f"ksn3.{key_id(NEW)}."
    assert [w for w, v in stored_values(db).items() if not v.startswith(head)] == []
    assert all_served(rotated_api, load.entries) == []
