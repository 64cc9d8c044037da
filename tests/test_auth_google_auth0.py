"""Google and Auth0 ID tokens verified locally against a fake provider's
JWKS (spec §4.3, §4.4)."""

import base64
import hashlib
import hmac
import json
import time
from dataclasses import replace

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from services.api.auth.auth0 import Auth0Verifier
from services.api.auth.base import AuthFailure
from services.api.auth.google import GoogleVerifier
from services.api.auth.providers import http_session
from tests.fakes.idp import FakeIdentityProvider


@pytest.fixture(scope="module")
def idp():
    provider = FakeIdentityProvider()
    yield provider
    provider.close()


@pytest.fixture()
def google(idp, config):
    return GoogleVerifier(replace(config, **idp.config_overrides()), http_session())


@pytest.fixture()
def auth0(idp, config):
    return Auth0Verifier(replace(config, **idp.config_overrides()), http_session())


def failure(verifier, token) -> str:
    with pytest.raises(AuthFailure) as info:
        verifier.verify(token)
    return info.value.msg


def test_google_valid_token(google, idp):
    claims = google.verify(idp.token(idp.google_claims("1234")))
    assert claims["sub"] == "1234"


@pytest.mark.parametrize("change,message", [
    ({"exp": int(time.time()) - 10}, "Token has expired"),
    ({"aud": "someone-else"}, "Token client ID does not match. expected: "
     "test-client.apps.googleusercontent.com, actual: someone-else"),
    ({"iss": "accounts.google.com"}, "Invalid token issuer: accounts.google.com"),
    ({"email_verified": False}, "Email address is not verified"),
    ({"nbf": int(time.time()) + 600}, "Token is not yet valid"),
])
def test_google_rejections(google, idp, change, message):
    assert failure(google, idp.token(idp.google_claims(**change))) == message


def test_google_accepts_second_issuer_and_string_email_verified(google, idp):
    token = idp.token(idp.google_claims(iss="https://oauth2.googleapis.com", email_verified="true"))
    assert google.verify(token)


def hs256_token_signed_with_public_key(idp) -> str:
    """The classic confusion attack: HMAC with the RSA public key as secret."""
    public_pem = idp.keys[idp.current_kid].public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)

    def part(value: dict) -> bytes:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=")

    signed = part({"alg": "HS256", "kid": idp.current_kid}) + b"." + part(idp.google_claims())
    signature = base64.urlsafe_b64encode(hmac.new(public_pem, signed, hashlib.sha256).digest()).rstrip(b"=")
    return (signed + b"." + signature).decode()


def test_google_bad_signature_none_and_hs256(google, idp):
    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    assert failure(google, idp.token(idp.google_claims(), key=stranger)) == "Invalid or malformed token"
    unsigned = jwt.encode(idp.google_claims(), None, algorithm="none", headers={"kid": idp.current_kid})
    assert failure(google, unsigned) == "Invalid or malformed token"
    assert failure(google, hs256_token_signed_with_public_key(idp)) == "Invalid or malformed token"
    assert failure(google, "garbage") == "Invalid or malformed token"


def test_google_key_rotation_refetches_once(google, idp):
    assert google.verify(idp.token(idp.google_claims()))
    fetches = idp.jwks_fetches
    new_kid = idp.add_key()
    google.jwks.refetch_interval = 0
    assert google.verify(idp.token(idp.google_claims(), kid=new_kid))
    assert idp.jwks_fetches == fetches + 1


def test_unknown_kid_refetch_is_rate_limited(google, idp):
    assert google.verify(idp.token(idp.google_claims()))
    fetches = idp.jwks_fetches
    for _ in range(5):
        assert failure(google, idp.token(idp.google_claims(), kid="forged")) == "Invalid or malformed token"
    assert idp.jwks_fetches == fetches  # refetch_interval (5 s) not elapsed


@pytest.mark.parametrize("mode,fragment", [("down", "503"), ("garbage", "not JSON"), ("empty", "missing keys")])
def test_jwks_failures_are_401_messages(idp, config, mode, fragment):
    verifier = GoogleVerifier(replace(config, **idp.config_overrides()), http_session())
    idp.jwks_mode = mode
    try:
        message = failure(verifier, idp.token(idp.google_claims()))
    finally:
        idp.jwks_mode = "ok"
    assert message.startswith("Token validation failed:") and fragment in message


def test_auth0_valid_and_identity_claims(auth0, idp):
    claims = auth0.verify(idp.token(idp.auth0_claims("Bob@Example.com")))
    assert claims["email"] == "Bob@Example.com"


@pytest.mark.parametrize("change,message", [
    ({"exp": int(time.time()) - 1}, "Token has expired"),
    ({"aud": "x"}, "jwt audience invalid. expected: test-auth0-client"),
    ({"iss": "https://auth0.test.local"}, "jwt issuer invalid. expected: https://auth0.test.local/"),
    ({"email_verified": "false"}, "Email address is not verified"),
    ({"sub": ""}, "Token missing subject claim"),
    ({"email": None}, "Token missing email claim"),
])
def test_auth0_rejections(auth0, idp, change, message):
    assert failure(auth0, idp.token(idp.auth0_claims(**change))) == message


def test_auth0_header_checks(auth0, idp):
    assert failure(auth0, "not-a-jwt") == "Invalid token format"
    no_kid = jwt.encode(idp.auth0_claims(), idp.keys[idp.current_kid], algorithm="RS256")
    assert failure(auth0, no_kid) == "Missing key id in token header"
    assert failure(auth0, idp.token(idp.auth0_claims(), kid="nope")) == "Unable to find signing key for token"
