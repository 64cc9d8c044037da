"""A fake identity provider: a real HTTP server on 127.0.0.1 that holds RSA
keys, serves JWKS (Google and Auth0 paths), issues RS256 ID tokens with any
claims, and answers X / Discord user-info calls per access token."""

from __future__ import annotations

import json
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa

GOOGLE_CLIENT_ID = "test-client.apps.googleusercontent.com"
AUTH0_CLIENT_ID = "test-auth0-client"


class FakeIdentityProvider:
    def __init__(self):
        self.keys: dict[str, rsa.RSAPrivateKey] = {}
        self.jwks_mode = "ok"  # ok | down | garbage | empty
        self.userinfo: dict[str, tuple[int, Any, float]] = {}  # token -> (status, body, delay)
        self.jwks_fetches = 0
        self.add_key()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 - http.server API
                if self.path.endswith(("/certs", "/jwks.json")):
                    fake.jwks_fetches += 1
                    return self.jwks()
                if self.path.startswith(("/x/", "/discord/")):
                    token = self.headers.get("Authorization", "").removeprefix("Bearer ")
                    status, body, delay = fake.userinfo.get(token, (401, {"error": "bad token"}, 0))
                    if delay:
                        time.sleep(delay)
                    return self.reply(status, body)
                return self.reply(404, {"error": "not found"})

            def jwks(self):
                if fake.jwks_mode == "down":
                    return self.reply(503, {"error": "down"})
                if fake.jwks_mode == "garbage":
                    return self.reply(200, "<html>not json</html>", raw=True)
                if fake.jwks_mode == "empty":
                    return self.reply(200, {"keys": []})
                return self.reply(200, fake.jwks_document())

            def reply(self, status, body, raw=False):
                data = body.encode() if raw or isinstance(body, str) else json.dumps(body).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "text/html" if raw else "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (timeout tests)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    # -- keys and tokens -----------------------------------------------------
    def add_key(self) -> str:
        kid = uuid.uuid4().hex[:12]
        self.keys[kid] = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        return kid

    @property
    def current_kid(self) -> str:
        return list(self.keys)[-1]

    def jwks_document(self) -> dict:
        keys = []
        for kid, key in self.keys.items():
            jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
            keys.append({**jwk, "kid": kid, "alg": "RS256", "use": "sig"})
        return {"keys": keys}

    def token(self, claims: dict[str, Any], *, kid: str | None = None,
              key: rsa.RSAPrivateKey | None = None, headers: dict | None = None) -> str:
        kid = kid or self.current_kid
        signing_key = key or self.keys.get(kid) or self.keys[self.current_kid]
        return jwt.encode(claims, signing_key, algorithm="RS256", headers={"kid": kid, **(headers or {})})

    def google_claims(self, sub: str = "109876543210987654321", **extra) -> dict[str, Any]:
        now = int(time.time())
        return {"iss": "https://accounts.google.com", "aud": GOOGLE_CLIENT_ID, "sub": sub,
                "email": f"user{sub[-4:]}@gmail.com", "email_verified": True,
                "iat": now, "exp": now + 3600, **extra}

    def auth0_claims(self, email: str = "Alice@Example.com", **extra) -> dict[str, Any]:
        now = int(time.time())
        return {"iss": self.auth0_issuer, "aud": AUTH0_CLIENT_ID, "sub": "auth0|abc123",
                "email": email, "email_verified": True, "iat": now, "exp": now + 3600, **extra}

    # -- settings for the node -------------------------------------------------
    @property
    def auth0_domain(self) -> str:
        return "auth0.test.local"

    @property
    def auth0_issuer(self) -> str:
        return f"https://{self.auth0_domain}/"

    def config_overrides(self) -> dict[str, Any]:
        return {
            "google_client_id": GOOGLE_CLIENT_ID,
            "google_jwks_url": f"{self.url}/google/certs",
            "auth0_domain": self.auth0_domain,
            "auth0_client_id": AUTH0_CLIENT_ID,
            "auth0_jwks_url": f"{self.url}/auth0/.well-known/jwks.json",
            "x_userinfo_url": f"{self.url}/x/2/users/me",
            "discord_userinfo_url": f"{self.url}/discord/api/users/@me",
            "auth_http_timeout_seconds": 1.0,
        }

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
