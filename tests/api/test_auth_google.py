"""Google ID tokens verified locally against the fake provider's JWKS, with
the acceptance rules and messages of spec §4.3 and no call per request."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from services.api.auth.google import GoogleVerifier
from services.api.auth.providers import http_session
from shared.config import Config
from tests.support.fakes.idp import (
    GOOGLE_CLIENT_ID,
    FakeIdentityProvider,
    ManualClock,
    auth_failure,
    idp_fixture,  # noqa: F401 - the module's `idp` fixture
)

MALFORMED = "Invalid or malformed token"


@pytest.fixture(autouse=True)
def healthy_provider(idp: FakeIdentityProvider):
    idp.reset()
    yield
    idp.reset()


def verifier_for(idp: FakeIdentityProvider, **settings) -> GoogleVerifier:
    config = Config(**{**idp.config_overrides(), **settings})
    verifier = GoogleVerifier(config, http_session())
    verifier.jwks.clock = ManualClock()
    return verifier


@pytest.fixture()
def google(idp) -> GoogleVerifier:
    return verifier_for(idp)


def test_valid_token_gives_its_claims_and_later_calls_use_the_cached_keys(google, idp):
    claims = google.verify(idp.token(idp.google_claims("1234", email="a@b.c")))
    assert (claims["sub"], claims["email"]) == ("1234", "a@b.c")
    fetches = idp.jwks_fetches
    for sub in ("1", "2", "3"):
        assert google.verify(idp.token(idp.google_claims(sub)))["sub"] == sub
    assert idp.jwks_fetches == fetches  # no network call per request


def test_second_issuer_and_string_email_verified_are_accepted(google, idp):
    token = idp.token(idp.google_claims(iss="https://oauth2.googleapis.com", email_verified="true"))
    assert google.verify(token)["iss"] == "https://oauth2.googleapis.com"


@pytest.mark.parametrize(
    "change,message",
    [
        (
            {"aud": "someone-else"},
            f"Token client ID does not match. expected: {GOOGLE_CLIENT_ID}, actual: someone-else",
        ),
        ({"iss": "accounts.google.com"}, "Invalid token issuer: accounts.google.com"),
        ({"iss": "https://evil.example"}, "Invalid token issuer: https://evil.example"),
        ({"exp": int(time.time()) - 10}, "Token has expired"),
        ({"nbf": int(time.time()) + 600}, "Token is not yet valid"),
        ({"email_verified": False}, "Email address is not verified"),
        ({"email_verified": "false"}, "Email address is not verified"),
        ({"email_verified": None}, "Email address is not verified"),  # None drops the claim
    ],
)
def test_rejections_with_the_reference_messages(google, idp, change, message):
    assert auth_failure(google, idp.token(idp.google_claims(**change))) == message


def test_issued_at_slightly_ahead_of_our_clock_is_accepted(google, idp):
    # Google's clock a few seconds ahead of ours must not log users out.
    assert google.verify(idp.token(idp.google_claims(iat=int(time.time()) + 5)))


def test_jwt_leeway_applies_to_expiry_and_not_before(idp):
    now = int(time.time())
    strict = verifier_for(idp)
    lenient = verifier_for(idp, jwt_leeway_seconds=60.0)
    expired = idp.token(idp.google_claims(exp=now - 20))
    early = idp.token(idp.google_claims(nbf=now + 20))
    assert auth_failure(strict, expired) == "Token has expired"
    assert auth_failure(strict, early) == "Token is not yet valid"
    assert lenient.verify(expired) and lenient.verify(early)


def test_forged_tokens_are_malformed(google, idp):
    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    good = idp.token(idp.google_claims())
    header, payload, signature = good.split(".")
    other = idp.token(idp.google_claims(sub="someone-else")).split(".")[1]
    for token in (
        idp.token(idp.google_claims(), key=stranger),  # signed by another key, same kid
        f"{header}.{other}.{signature}",  # payload swapped under a valid signature
        idp.unsigned_token(idp.google_claims()),  # alg: none
        idp.hs256_confusion_token(idp.google_claims()),  # HS256 keyed with the public key
        "garbage",
        "",
        "a.b.c",
        f"{header}.{payload}",
    ):
        assert auth_failure(google, token) == MALFORMED, token


def test_unknown_kid_refetches_the_keys_once_and_accepts_a_rotated_key(google, idp):
    assert google.verify(idp.token(idp.google_claims()))
    fetches = idp.jwks_fetches
    google.jwks.clock.advance(6)  # past the refetch interval
    new_kid = idp.rotate()
    assert google.verify(idp.token(idp.google_claims(), kid=new_kid))
    assert idp.jwks_fetches == fetches + 1


def test_unknown_kid_refetch_is_rate_limited(google, idp):
    assert google.verify(idp.token(idp.google_claims()))
    fetches = idp.jwks_fetches
    for _ in range(20):
        assert auth_failure(google, idp.token(idp.google_claims(), kid="forged")) == MALFORMED
    assert idp.jwks_fetches == fetches  # within 5 s of the last fetch: none
    google.jwks.clock.advance(6)
    for _ in range(20):
        assert auth_failure(google, idp.token(idp.google_claims(), kid="forged")) == MALFORMED
    assert idp.jwks_fetches == fetches + 1


def test_cache_control_max_age_sets_how_long_keys_are_kept(google, idp):
    idp.jwks_max_age = 120
    assert google.verify(idp.token(idp.google_claims()))
    fetches = idp.jwks_fetches
    google.jwks.clock.advance(100)
    assert google.verify(idp.token(idp.google_claims()))
    assert idp.jwks_fetches == fetches
    google.jwks.clock.advance(30)
    assert google.verify(idp.token(idp.google_claims()))
    assert idp.jwks_fetches == fetches + 1


@pytest.mark.parametrize(
    "mode,message",
    [
        ("down", "Token validation failed: Failed to fetch Google JWKS: 503 Service Unavailable"),
        ("garbage", "Token validation failed: Google JWKS response is not JSON"),
        ("empty", "Token validation failed: Google JWKS response missing keys"),
        ("keys_not_list", "Token validation failed: Google JWKS response has no usable RSA keys"),
        ("nested", "Token validation failed: Google JWKS response is not JSON"),
    ],
)
def test_jwks_failures_are_auth_failures_and_not_retried_at_once(google, idp, mode, message):
    idp.jwks_mode = mode
    fetches = idp.jwks_fetches
    for _ in range(5):
        assert auth_failure(google, idp.token(idp.google_claims())) == message
    assert idp.jwks_fetches == fetches + 1  # the failure is remembered for the refetch interval


def test_jwks_unreachable_and_slow(idp):
    unreachable = verifier_for(idp, google_jwks_url="http://127.0.0.1:9/certs")
    assert (
        auth_failure(unreachable, idp.token(idp.google_claims()))
        == "Token validation failed: Failed to fetch Google JWKS: connection failed"
    )
    idp.jwks_delay = 2.0  # twice AUTH_HTTP_TIMEOUT_SECONDS
    assert (
        auth_failure(verifier_for(idp), idp.token(idp.google_claims()))
        == "Token validation failed: Failed to fetch Google JWKS: did not answer in time"
    )


def test_known_keys_survive_a_provider_outage_within_the_grace(google, idp):
    assert google.verify(idp.token(idp.google_claims()))
    idp.jwks_mode = "down"
    google.jwks.clock.advance(3600 + 10)  # keys expired; the refresh fails
    assert google.verify(idp.token(idp.google_claims()))
    google.jwks.clock.advance(3600)  # past the grace: no keys any more
    assert auth_failure(google, idp.token(idp.google_claims())).startswith(
        "Token validation failed:"
    )


def test_concurrent_first_requests_fetch_the_keys_once(google, idp):
    idp.jwks_delay = 0.3  # all threads arrive while the first fetch is under way
    fetches = idp.jwks_fetches
    tokens = [idp.token(idp.google_claims(str(n))) for n in range(8)]
    with ThreadPoolExecutor(max_workers=8) as pool:
        subs = list(pool.map(lambda token: google.verify(token)["sub"], tokens))
    assert subs == [str(n) for n in range(8)]
    assert idp.jwks_fetches == fetches + 1
