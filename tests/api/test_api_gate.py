"""One request runs Python at a time in an API worker (services/api/server/gate.py),
but a request waiting on an identity provider must not hold up the others,
and threads waiting for one JWKS fetch must not deadlock with it."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from services.api.server import gate
from tests.support.fakes.idp import idp_fixture  # noqa: F401 - the module's `idp` fixture
from tests.support.keyshare_helpers import secp_key, share_hex


def test_gated_app_runs_one_request_at_a_time_and_outside_gate_lets_another_in():
    inside = []
    peak = []
    release_first = threading.Event()

    def app(environ, start_response):
        inside.append(1)
        peak.append(len(inside))
        if environ["which"] == "slow":
            with gate.outside_gate():
                release_first.wait(5)
        inside.pop()
        return [environ["which"].encode()]

    gated = gate.GatedApp(app)
    with ThreadPoolExecutor(2) as pool:
        slow = pool.submit(gated, {"which": "slow"}, None)
        time.sleep(0.1)
        fast = pool.submit(gated, {"which": "fast"}, None)
        assert fast.result(5) == [b"fast"]  # ran while the slow one waited outside
        assert not slow.done()
        release_first.set()
        assert slow.result(5) == [b"slow"]
    assert max(peak) == 2  # only because the slow one stepped out


def test_outside_gate_is_a_no_op_for_threads_not_holding_it():
    with gate.outside_gate():
        pass
    assert gate._gate.acquire(blocking=False)  # still free, never released twice
    gate._gate.release()


@pytest.fixture(scope="module")
def node(start_api, idp):
    return start_api(**idp.config_overrides(timeout=5.0))


def test_slow_identity_provider_does_not_block_other_requests(node, idp):
    idp.answer("slow-x-token", 200, {"data": {"id": "777", "username": "slow"}}, delay=1.5)
    with ThreadPoolExecutor(1) as pool:
        slow = pool.submit(
            node.post,
            "/keyshare/v1/register",
            headers={"Authorization": "Bearer slow-x-token"},
            json={
                "auth_type": "x",
                "curve_type": "secp256k1",
                "public_key": secp_key(),
                "share": share_hex(),
            },
        )
        time.sleep(0.2)  # the slow request is now waiting on the provider
        started = time.monotonic()
        for _ in range(5):
            assert node.get("/status").status_code == 200
        assert time.monotonic() - started < 1.0
        assert not slow.done()
        assert slow.result(10).status_code == 200


def test_concurrent_requests_waiting_for_one_jwks_fetch_all_finish(node, idp, start_api):
    fresh = start_api(**idp.config_overrides(timeout=5.0))  # its own, still empty, JWKS cache
    idp.jwks_delay = 1.0
    fetches_before = idp.jwks_fetches
    try:
        token = idp.token(idp.google_claims("4242"))
        with ThreadPoolExecutor(4) as pool:
            answers = list(
                pool.map(
                    lambda _: fresh.post(
                        "/keyshare/v1/",
                        headers={"Authorization": f"Bearer {token}"},
                        json={"auth_type": "google", "public_key": secp_key()},
                    ),
                    range(4),
                )
            )
    finally:
        idp.reset()
    # No wallet exists: each request passed authentication and got the spec's not-found.
    assert [a.status_code for a in answers] == [404] * 4, [a.text for a in answers]
    assert idp.jwks_fetches - fetches_before == 1
