"""A fake identity provider: a real HTTP server on 127.0.0.1 that holds RSA
keys, serves JWKS (Google and Auth0 paths), issues RS256 ID tokens with any
claims, and answers X / Discord user-info calls per access token.

It can be told to misbehave: ``jwks_mode`` (ok | down | garbage | empty |
keys_not_list | nested), ``jwks_delay`` (seconds before answering), and per access token a
status, body, delay before the headers and a "drip" (seconds between body
bytes) for the user-info endpoints.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

GOOGLE_CLIENT_ID = "test-client.apps.googleusercontent.com"
AUTH0_CLIENT_ID = "test-auth0-client"
AUTH0_DOMAIN = "auth0.test.local"


@dataclass(frozen=True)
class UserInfoAnswer:
    status: int
    body: Any  # JSON-able, or a str sent as is
    delay: float = 0.0
    drip: float = 0.0


UNKNOWN_TOKEN = UserInfoAnswer(401, {"error": "bad token"})


class FakeIdentityProvider:
    def __init__(self) -> None:
        self.keys: dict[str, rsa.RSAPrivateKey] = {}
        self.jwks_mode = "ok"
        self.jwks_delay = 0.0
        self.jwks_max_age: int | None = None
        self.userinfo: dict[str, UserInfoAnswer] = {}
        self.jwks_fetches = 0
        self.seen_authorization: list[str] = []
        self.seen_client_ports: list[int] = []  # one port per TCP connection: shows pooling
        self.seen_cookies: list[str | None] = []
        self.add_key()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, like real providers
            disable_nagle_algorithm = True  # headers and body are two writes: no 40 ms stall

            def do_GET(self) -> None:  # noqa: N802 - http.server API
                if self.path.endswith(("/certs", "/jwks.json")):
                    fake.jwks_fetches += 1
                    time.sleep(fake.jwks_delay)
                    return self.jwks()
                if self.path.startswith(("/x/", "/discord/")):
                    header = self.headers.get("Authorization", "")
                    fake.seen_authorization.append(header)
                    fake.seen_client_ports.append(self.client_address[1])
                    fake.seen_cookies.append(self.headers.get("Cookie"))
                    answer = fake.userinfo.get(header.removeprefix("Bearer "), UNKNOWN_TOKEN)
                    time.sleep(answer.delay)
                    return self.reply(answer.status, answer.body, drip=answer.drip)
                return self.reply(404, {"error": "not found"})

            def jwks(self) -> None:
                if fake.jwks_mode == "down":
                    return self.reply(503, {"error": "down"})
                if fake.jwks_mode == "garbage":
                    return self.reply(200, "<html>not json</html>")
                if fake.jwks_mode == "empty":
                    return self.reply(200, {"keys": []})
                if fake.jwks_mode == "nested":  # valid JSON too deep for Python's parser
                    return self.reply(200, "[" * 100_000 + "]" * 100_000)
                if fake.jwks_mode == "keys_not_list":
                    return self.reply(200, {"keys": "not a list"})
                extra = (
                    {"Cache-Control": f"public, max-age={fake.jwks_max_age}"}
                    if fake.jwks_max_age
                    else {}
                )
                return self.reply(200, fake.jwks_document(), extra)

            def reply(
                self, status: int, body: Any, extra: dict[str, str] | None = None, drip: float = 0.0
            ) -> None:
                data = body.encode() if isinstance(body, str) else json.dumps(body).encode()
                try:
                    self.send_response(status)
                    self.send_header(
                        "Content-Type", "text/html" if isinstance(body, str) else "application/json"
                    )
                    self.send_header("Content-Length", str(len(data)))
                    self.send_header("Set-Cookie", "guest_id=v1%3A123; Path=/; Max-Age=3600")
                    for name, value in (extra or {}).items():
                        self.send_header(name, value)
                    self.end_headers()
                    if not drip:
                        self.wfile.write(data)
                    for index in range(len(data) if drip else 0):
                        self.wfile.write(data[index : index + 1])
                        self.wfile.flush()
                        time.sleep(drip)
                except (BrokenPipeError, ConnectionResetError):
                    self.close_connection = True  # the client gave up (timeout tests)

            def log_message(self, *args: Any) -> None:
                pass

        return Handler

    # -- keys and tokens -----------------------------------------------------
    def add_key(self) -> str:
        kid = uuid.uuid4().hex[:12]
        self.keys[kid] = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        return kid

    def rotate(self) -> str:
        """A new current key; the old ones are dropped from the JWKS."""
        kid = self.add_key()
        self.keys = {kid: self.keys[kid]}
        return kid

    @property
    def current_kid(self) -> str:
        return list(self.keys)[-1]

    def jwks_document(self) -> dict[str, Any]:
        keys = []
        for kid, key in self.keys.items():
            jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
            keys.append({**jwk, "kid": kid, "alg": "RS256", "use": "sig"})
        return {"keys": keys}

    def token(
        self,
        claims: dict[str, Any],
        *,
        kid: str | None = None,
        key: rsa.RSAPrivateKey | None = None,
    ) -> str:
        kid = kid or self.current_kid
        signing_key = key or self.keys.get(kid) or self.keys[self.current_kid]
        return jwt.encode(claims, signing_key, algorithm="RS256", headers={"kid": kid})

    def unsigned_token(self, claims: dict[str, Any]) -> str:
        """``alg: none``: no signature at all."""
        return jwt.encode(claims, None, algorithm="none", headers={"kid": self.current_kid})

    def hs256_confusion_token(self, claims: dict[str, Any]) -> str:
        """The classic algorithm confusion attack: HS256 with the RSA public
        key's PEM as the HMAC secret (PyJWT refuses to build it, so by hand)."""
        public_pem = (
            self.keys[self.current_kid]
            .public_key()
            .public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        )
        signed = (
            _b64(json.dumps({"alg": "HS256", "typ": "JWT", "kid": self.current_kid}).encode())
            + "."
            + _b64(json.dumps(claims).encode())
        )
        signature = hmac.new(public_pem, signed.encode(), hashlib.sha256).digest()
        return f"{signed}.{_b64(signature)}"

    def google_claims(self, sub: str = "109876543210987654321", **extra: Any) -> dict[str, Any]:
        now = int(time.time())
        claims = {
            "iss": "https://accounts.google.com",
            "aud": GOOGLE_CLIENT_ID,
            "sub": sub,
            "email": f"user{sub[-4:]}@gmail.com",
            "email_verified": True,
            "iat": now,
            "exp": now + 3600,
            **extra,
        }
        return {name: value for name, value in claims.items() if value is not None}

    def auth0_claims(self, email: str = "Alice@Example.com", **extra: Any) -> dict[str, Any]:
        now = int(time.time())
        claims = {
            "iss": f"https://{AUTH0_DOMAIN}/",
            "aud": AUTH0_CLIENT_ID,
            "sub": "auth0|abc123",
            "email": email,
            "email_verified": True,
            "iat": now,
            "exp": now + 3600,
            **extra,
        }
        return {name: value for name, value in claims.items() if value is not None}

    def answer(
        self, token: str, status: int, body: Any, *, delay: float = 0.0, drip: float = 0.0
    ) -> str:
        """Make the X / Discord user-info endpoints answer ``token`` so."""
        self.userinfo[token] = UserInfoAnswer(status, body, delay, drip)
        return token

    # -- settings for the node -------------------------------------------------
    def config_overrides(self, timeout: float = 1.0) -> dict[str, Any]:
        return {
            "google_client_id": GOOGLE_CLIENT_ID,
            "google_jwks_url": f"{self.url}/google/oauth2/v3/certs",
            "auth0_domain": AUTH0_DOMAIN,
            "auth0_client_id": AUTH0_CLIENT_ID,
            "auth0_jwks_url": f"{self.url}/auth0/.well-known/jwks.json",
            "x_userinfo_url": f"{self.url}/x/2/users/me",
            "discord_userinfo_url": f"{self.url}/discord/api/users/@me",
            "auth_http_timeout_seconds": timeout,
        }

    def reset(self) -> None:
        self.jwks_mode, self.jwks_delay, self.jwks_max_age = "ok", 0.0, None

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class ManualClock:
    """A monotonic clock the test moves by hand (for JWKS cache ages)."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@pytest.fixture(scope="module", name="idp")
def idp_fixture() -> Iterator[FakeIdentityProvider]:
    """One fake identity provider per test module (import this fixture)."""
    provider = FakeIdentityProvider()
    yield provider
    provider.close()


def auth_failure(verifier, token: str) -> str:
    """The message a verifier refuses ``token`` with (fails the test if accepted)."""
    import pytest

    from services.api.auth.base import AuthFailure

    with pytest.raises(AuthFailure) as info:
        verifier.verify(token)
    return info.value.msg
