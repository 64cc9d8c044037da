"""`ksnode reencrypt` as an operator meets it: --dry-run changes nothing,
no confirmation off a terminal means no change, a verified backup comes
first (and a failing one stops it), --to legacy wants one secret; /health
and /metrics show a rotation in progress."""

from __future__ import annotations

import pytest

from services.api.app import create_app
from shared.crypto.sealing import Cipher, key_id, share_aad
from shared.keys.reencrypt import Reencryptor
from shared.store import audit as audit_store
from shared.store.tables import PG_DUMPS
from tests.api.test_metrics import scrape, value
from tests.conftest import TEST_SECRET, ApiServer, build_node_context
from tests.support.backup_helpers import BIN, fake_pg_dump
from tests.support.ops import OPS_HEADERS
from tests.support.sealing_helpers import (
    ksnode,
    seed_shares,
    spec_ksn1_seal,
    spec_legacy_encrypt,
    stored_values,
    write_secret,
)

NEW = "a fresh secret"


@pytest.fixture(scope="module")
def seeded(db):
    old = Cipher(TEST_SECRET)
    seed_shares(db, 4, lambda s, w: old.encrypt(s, share_aad(w)))
    seed_shares(db, 2, lambda s, w: spec_ksn1_seal(s, TEST_SECRET, share_aad(w)))
    seed_shares(db, 1, lambda s, _w: spec_legacy_encrypt(s, TEST_SECRET))
    return stored_values(db)


@pytest.fixture(scope="module")
def rotation_env(env_for, dbname, module_tmp):
    new_file = write_secret(module_tmp, "new.txt", NEW)
    return env_for(
        dbname,
        ENCRYPTION_SECRET_PATH=str(new_file),
        ENCRYPTION_SECRET_PREVIOUS_PATHS=str(module_tmp / "encryption_secret.txt"),
    )


def test_dry_run_prints_rows_per_key_id_and_format_and_changes_nothing(db, seeded, rotation_env):
    result = ksnode(rotation_env, "reencrypt", "--dry-run")
    assert result.returncode == 0, result.stderr
    lines = [line.split() for line in result.stdout.splitlines()]
    assert ["key_shares", "ksn2", key_id(TEST_SECRET), "previous", "4"] in lines
    assert ["key_shares", "ksn1", "-", "unnamed", "2"] in lines
    assert ["key_shares", "legacy", "-", "unnamed", "1"] in lines
    assert f"to rewrite into key id {key_id(NEW)}: 7 key_shares" in result.stdout
    assert stored_values(db) == seeded


def test_without_yes_off_a_terminal_it_refuses_and_changes_nothing(db, seeded, rotation_env):
    result = ksnode(rotation_env, "reencrypt", "--no-backup")
    assert result.returncode == 1
    assert "refusing to reencrypt without confirmation; pass --yes" in result.stderr
    assert stored_values(db) == seeded


def test_a_failing_backup_stops_it_before_any_change(db, seeded, rotation_env, tmp_path):
    failing = fake_pg_dump(tmp_path, 'echo "pg_dump: error: disk on fire" >&2; exit 1')
    env = {**rotation_env, "PG_DUMP_BIN": failing, "PG_RESTORE_BIN": str(BIN / "pg_restore")}
    result = ksnode(env, "reencrypt", "--yes")
    assert result.returncode == 1
    assert "reencrypt failed" in result.stderr and "disk on fire" in result.stderr
    assert "rewritten" not in result.stdout
    assert stored_values(db) == seeded


def test_to_legacy_needs_the_rotation_finished_first(db, seeded, rotation_env):
    result = ksnode(rotation_env, "reencrypt", "--to", "legacy", "--yes", "--no-backup")
    assert result.returncode == 1
    assert "remove ENCRYPTION_SECRET_PREVIOUS_PATHS" in result.stderr
    assert stored_values(db) == seeded


def test_to_legacy_is_refused_while_the_node_refuses_unbound_shares(db, seeded, env_for, dbname):
    env = env_for(dbname, UNBOUND_SHARES="refuse")
    result = ksnode(env, "reencrypt", "--to", "legacy", "--yes", "--no-backup")
    assert result.returncode == 1
    assert "set UNBOUND_SHARES=serve for the node first" in result.stderr
    assert stored_values(db) == seeded


def test_health_and_metrics_show_an_unfinished_rotation(config, db, seeded):
    rotated = Cipher(NEW, [TEST_SECRET])
    server = ApiServer(create_app(build_node_context(config, db, rotated))).start()
    try:
        r = server.get("/health", headers=OPS_HEADERS)
        assert r.status_code == 200 and r.json()["status"] == "degraded"
        rotation = [x for x in r.json()["reasons"] if x["reason"] == "key_rotation_unfinished"]
        assert len(rotation) == 1
        assert "7 key shares are not yet under the current secret" in rotation[0]["detail"]
        assert "ksnode reencrypt" in rotation[0]["detail"]
        samples = scrape(server)
        assert value(samples, "ksnode_health_reason", reason="key_rotation_unfinished") == 1
        labels = {"table": "key_shares", "format": "ksn2", "key_id": key_id(TEST_SECRET)}
        assert value(samples, "ksnode_encrypted_values", **labels, secret="previous") == 4
        labels = {"table": "key_shares", "format": "legacy", "key_id": ""}
        assert value(samples, "ksnode_encrypted_values", **labels, secret="unnamed") == 1
    finally:
        server.stop()


def test_it_takes_a_verified_backup_first_then_finishes_the_rotation(
    config, db, seeded, rotation_env
):
    result = ksnode(rotation_env, "reencrypt", "--yes")
    assert result.returncode == 0, result.stdout + result.stderr
    backup_line = next(line for line in result.stdout.splitlines() if line.startswith("backup: "))
    path = backup_line.split()[1]
    with db.cursor() as cur:
        cur.execute(f"SELECT status FROM {PG_DUMPS} WHERE dump_path = %s", (path,))
        assert cur.fetchone() == ("COMPLETED",)
    assert result.stdout.index("backup: ") < result.stdout.index("rewritten: ")
    assert "every share is now sealed to its owner: set UNBOUND_SHARES=refuse" in result.stdout
    with db.connection() as conn:  # the run is in the audit trail
        (record,) = [x.as_json() for x in audit_store.scan(conn) if x.record.event == "reencrypt"]
    assert record["outcome"] == "ok" and record["client"].startswith("local:")
    assert record["detail"]["rewritten"] == 7 and record["detail"]["key_id"] == key_id(NEW)
    head = f"ksn3.{key_id(NEW)}."
    assert all(v.startswith(head) for v in stored_values(db).values())

    # The rotation done, /health drops its reason and the gauge shows one key.
    server = ApiServer(create_app(build_node_context(config, db, Cipher(NEW, [TEST_SECRET]))))
    server.start()
    try:
        reasons = [x["reason"] for x in server.get("/health").json()["reasons"]]
        assert "key_rotation_unfinished" not in reasons
        labels = {"table": "key_shares", "format": "ksn3", "key_id": key_id(NEW)}
        assert value(scrape(server), "ksnode_encrypted_values", **labels, secret="current") == 7
    finally:
        server.stop()
    # Nothing left for the engine either.
    assert Reencryptor(db, Cipher(NEW)).run().rewritten == 0


def test_on_a_terminal_it_asks_then_draws_a_progress_bar(
    db, env_for, dbname, module_tmp, seeded, rotation_env
):
    import os
    import select
    import subprocess

    from tests.support.sealing_helpers import KSNODE, ROOT

    old = Cipher(NEW)
    seed_shares(db, 5, lambda s, w: old.encrypt(s, share_aad(w)))
    newest = write_secret(module_tmp, "newest.txt", "the newest secret")
    env = env_for(
        dbname,
        ENCRYPTION_SECRET_PATH=str(newest),
        ENCRYPTION_SECRET_PREVIOUS_PATHS=rotation_env["ENCRYPTION_SECRET_PATH"]
        + f",{module_tmp / 'encryption_secret.txt'}",
    )
    with db.cursor() as cur:
        cur.execute('SELECT count(*) FROM "2_server_keypairs"')
        expected = len(stored_values(db)) + cur.fetchone()[0]  # none under the newest secret
    master, slave = os.openpty()
    run = subprocess.Popen(
        [*KSNODE, "reencrypt", "--no-backup"],
        env={"PATH": os.environ.get("PATH", ""), **env},
        stdin=slave,
        stdout=slave,
        stderr=slave,
        cwd=ROOT,
    )
    os.close(slave)
    seen = b""
    answered = False
    try:
        while True:
            ready, _, _ = select.select([master], [], [], 60)
            assert ready, seen.decode(errors="replace")
            try:
                chunk = os.read(master, 4096)
            except OSError:  # the process closed the terminal
                break
            if not chunk:
                break
            seen += chunk
            if not answered and b"Type 'yes'" in seen:
                os.write(master, b"yes\n")
                answered = True
    finally:
        os.close(master)
        assert run.wait(timeout=60) == 0, seen.decode(errors="replace")
    text = seen.decode(errors="replace")
    assert f"Rewrite {expected} values in database" in text
    assert f"[{'#' * 30}] {expected}/{expected} rows" in text and "rows/s, ETA" in text
    head = f"ksn3.{key_id('the newest secret')}."
    assert all(v.startswith(head) for v in stored_values(db).values())
