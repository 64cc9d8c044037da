"""20 threads racing the same registration: exactly one wins, the rest get
the documented 409, never a 500 (spec §13 W10)."""

import threading

import requests

from shared.store.tables import WALLETS
from tests.support.fakes.telegram import bearer
from tests.support.keyshare_helpers import ed_key, secp_key, share_hex


def race(url: str, path: str, bodies: list[dict], headers: list[dict]) -> list[int]:
    barrier = threading.Barrier(len(bodies))
    statuses: list[int] = []

    def call(body, header):
        session = requests.Session()
        barrier.wait(10)
        statuses.append(session.post(url + path, json=body, headers=header, timeout=30).status_code)

    threads = [
        threading.Thread(target=call, args=pair) for pair in zip(bodies, headers, strict=True)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return statuses


def test_v2_register_race_same_user(api, db):
    secp, ed = secp_key(), ed_key()
    body = {
        "auth_type": "telegram",
        "wallets": {
            "secp256k1": {"public_key": secp, "share": share_hex()},
            "ed25519": {"public_key": ed, "share": share_hex()},
        },
    }
    statuses = race(api.url, "/keyshare/v2/register", [body] * 20, [bearer("5551")] * 20)
    assert sorted(statuses) == [200] + [409] * 19
    with db.cursor() as cur:
        cur.execute(
            f"SELECT count(*) FROM {WALLETS} WHERE public_key = ANY(%s)",
            ([bytes.fromhex(secp), bytes.fromhex(ed)],),
        )
        assert cur.fetchone()[0] == 2


def test_v1_register_race_different_users(api, db):
    key = secp_key()
    bodies = [
        {
            "auth_type": "telegram",
            "curve_type": "secp256k1",
            "public_key": key,
            "share": share_hex(),
        }
        for _ in range(20)
    ]
    headers = [bearer(str(7000 + i)) for i in range(20)]
    statuses = race(api.url, "/keyshare/v1/register", bodies, headers)
    assert sorted(statuses) == [200] + [409] * 19
