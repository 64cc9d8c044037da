"""The audit trail across an encryption secret rotation: records sealed
under the previous secret still verify and are still found by user; once
that secret is removed they are reported as unverifiable under their key id,
never as edited. Real Postgres, the real API program and the real CLI."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import requests

from shared.audit.records import AuditKey, Record, seal_chain
from shared.audit.verify import verify_chain
from shared.crypto.secretfiles import load_secret
from shared.db.embedded import free_port
from shared.store import audit as store
from tests.support.api_program import start_api_program
from tests.support.keyshare_helpers import Wallet, secp_key, share_hex
from tests.support.node_process import run_ksnode
from tests.support.processes import terminate


def ksnode(env: dict[str, str], *args: str):
    return run_ksnode({**os.environ, **env}, *args, timeout=180)


class Api:
    """The api program on a free port, stopped with SIGTERM (which commits
    its queued read records)."""

    def __init__(self, env: dict[str, str]):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {**os.environ, **env, "PORT": str(self.port), "HOST": "127.0.0.1"}

    def __enter__(self) -> Api:
        self.program = start_api_program(self.env, timeout=60)
        return self

    def __exit__(self, *exc) -> None:
        assert terminate(self.program) == 0

    def post(self, path: str, **kw) -> requests.Response:
        return requests.post(self.url + path, timeout=10, **kw)


def register_and_read(wallet: Wallet, public: str, seen: list[str]) -> None:
    r = wallet.post(
        "/keyshare/v1/register",
        {"curve_type": "secp256k1", "public_key": public, "share": share_hex()},
    )
    assert r.status_code == 200, r.text
    seen.append(r.headers["X-Request-Id"])
    read(wallet, public, seen)


def read(wallet: Wallet, public: str, seen: list[str]) -> None:
    r = wallet.post("/keyshare/v1", {"public_key": public})
    assert r.status_code == 200, r.text
    seen.append(r.headers["X-Request-Id"])


def found(env: dict[str, str], user_auth_id: str) -> list[dict]:
    result = ksnode(env, "audit", "find", "--user-auth-id", user_auth_id)
    assert result.returncode == 0, result.stderr
    assert user_auth_id not in result.stdout
    return [json.loads(line) for line in result.stdout.splitlines()]


def execute(db, sql: str, params=()) -> None:
    with db.cursor() as cur:
        cur.execute(sql, params)


def tamper(db, seq: int, column: str, value: str) -> str:
    """Set one column of a stored record; returns the value it had."""
    with db.cursor() as cur:
        cur.execute(f"SELECT {column} FROM {store.AUDIT} WHERE seq = %s", (seq,))
        (before,) = cur.fetchone()
    execute(db, f"UPDATE {store.AUDIT} SET {column} = %s WHERE seq = %s", (value, seq))
    return before


@pytest.fixture(scope="module")
def secrets(secret_file, module_tmp) -> tuple[Path, Path]:
    """Secret A (the one the module's database was set up with) and B."""
    new = module_tmp / "encryption_secret.new"
    new.write_text(os.urandom(32).hex())
    new.chmod(0o600)
    return secret_file, new


def test_verify_and_find_across_a_rotation_then_without_the_old_secret(
    config, db, env_for, secrets
):
    old_path, new_path = secrets
    key_a, key_b = AuditKey(load_secret(old_path)), AuditKey(load_secret(new_path))
    env_a = env_for(config.db_name)
    env_ab = env_for(
        config.db_name,
        ENCRYPTION_SECRET_PATH=str(new_path),
        ENCRYPTION_SECRET_PREVIOUS_PATHS=str(old_path),
    )
    env_b = env_for(config.db_name, ENCRYPTION_SECRET_PATH=str(new_path))
    alice, bob = Wallet(None), Wallet(None)
    alice_before: list[str] = []
    alice_after: list[str] = []
    first, second = secp_key(), secp_key()

    with Api(env_a) as api:  # under secret A
        alice.api = bob.api = api
        register_and_read(alice, first, alice_before)
        register_and_read(bob, secp_key(), [])
    with Api(env_ab) as api:  # rotated: B current, A previous
        alice.api = bob.api = api
        read(alice, first, alice_after)  # a share sealed under A, still served
        register_and_read(alice, second, alice_after)
        register_and_read(bob, secp_key(), [])

    with db.connection() as conn:
        records = list(store.scan(conn))
    by_key = {
        kid: [s.seq for s in records if s.key_id == kid] for kid in {s.key_id for s in records}
    }
    assert set(by_key) == {key_a.key_id, key_b.key_id}
    under_a = len(by_key[key_a.key_id])
    assert under_a >= 4 and len(by_key[key_b.key_id]) >= 5

    # Both secrets configured: the whole chain verifies, records under A included.
    result = ksnode(env_ab, "audit", "verify")
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"audit trail intact: {len(records)} records" in result.stdout
    assert f"{key_a.key_id} (previous): {under_a}" in result.stdout
    # ... really checked under A: an edited record sealed under A is named.
    edited = by_key[key_a.key_id][1]
    before = tamper(db, edited, "client", "198.51.100.9")
    result = ksnode(env_ab, "audit", "verify")
    assert result.returncode == 1
    assert f"PROBLEM seq {edited} (edited)" in result.stdout
    tamper(db, edited, "client", before)
    assert ksnode(env_ab, "audit", "verify").returncode == 0

    # find hashes the identity under both keys: records from before and after.
    alice_records = found(env_ab, alice.user_auth_id)
    # (in seq order, which is commit order: reads are batched per API worker)
    key_of = {r["request_id"]: r["key_id"] for r in alice_records}
    assert len(key_of) == len(alice_records)
    assert key_of == {
        **{rid: key_a.key_id for rid in alice_before},
        **{rid: key_b.key_id for rid in alice_after},
    }
    assert {r["public_keys"][0] for r in alice_records} == {
        f"secp256k1:{first}",
        f"secp256k1:{second}",
    }
    assert len(found(env_ab, bob.user_auth_id)) == 4

    # The operator finishes the rotation: every share moved to B, A removed.
    result = ksnode(env_ab, "reencrypt", "--yes", "--no-backup")
    assert result.returncode == 0, result.stdout + result.stderr
    result = ksnode(env_b, "audit", "verify")
    assert result.returncode == 1
    problems = [line for line in result.stdout.splitlines() if line.startswith("PROBLEM")]
    assert len(problems) == 1, result.stdout
    assert problems[0].startswith(
        f"PROBLEM seq {by_key[key_a.key_id][0]} (unknown-key): {under_a} record(s) "
    )
    assert f"sealed under key id {key_a.key_id}, which no configured secret has" in problems[0]
    assert "edited" not in result.stdout and "deleted" not in result.stdout
    assert (
        f"audit trail NOT fully verified: {under_a} record(s) under key id(s) {key_a.key_id}"
        in result.stdout
    )
    # A record under B is still checked and an edit to it named as such.
    edited = by_key[key_b.key_id][0]
    before = tamper(db, edited, "outcome", "UNAUTHORIZED")
    result = ksnode(env_b, "audit", "verify")
    assert f"PROBLEM seq {edited} (edited)" in result.stdout
    assert "audit trail NOT intact: 2 problem(s)" in result.stdout
    tamper(db, edited, "outcome", before)
    # Without A, find can only match what was recorded under B.
    assert sorted(r["request_id"] for r in found(env_b, alice.user_auth_id)) == sorted(alice_after)


def test_a_retention_record_under_a_removed_key_is_not_taken_for_tampering():
    """Retention ran under A, then A was removed: the records missing from the
    start are as unverifiable as the record that explains them, not deleted."""
    old, new = AuditKey("secret A"), AuditKey("secret B")
    marker = Record(
        "audit.retention", "ok", detail={"deleted": 3, "deleted_through": 3}, client="local"
    )
    chain = seal_chain(old, None, [Record("keyshare.v1.get", "ok") for _ in range(4)])
    chain += seal_chain(old, (chain[-1].seq, chain[-1].hash), [marker])
    chain += seal_chain(new, (chain[-1].seq, chain[-1].hash), [Record("keyshare.v1.get", "ok")])
    kept = chain[3:]  # retention deleted 1-3
    assert verify_chain(old, kept).problems[-1].kind == "unknown-key"  # B unknown to A alone
    report = verify_chain(new, kept)
    assert [(p.seq, p.kind) for p in report.problems] == [(1, "unknown-key"), (4, "unknown-key")]
    assert "records 1-3 missing from the start" in report.problems[0].message
    assert report.unknown[old.key_id].count == 2 and not report.tampered
    # Deleting the unverifiable retention record still shows as a deletion.
    report = verify_chain(new, [chain[3], chain[5]])
    assert (5, "deleted") in [(p.seq, p.kind) for p in report.problems]
    assert (1, "deleted") in [(p.seq, p.kind) for p in report.problems]
