"""Google ID tokens verified locally (RS256 against Google's JWKS), with the
acceptance rules the reference applied through the tokeninfo endpoint
(spec §4.3) — but without a network call per request."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import jwt
import requests

from services.api.auth.base import AuthFailure
from services.api.auth.jwks import JwksCache, unverified_header
from shared.config import Config

ISSUERS = ("https://accounts.google.com", "https://oauth2.googleapis.com")
MALFORMED = "Invalid or malformed token"


class GoogleVerifier:
    def __init__(
        self, config: Config, session: requests.Session, clock: Callable[[], float] = time.time
    ):
        self.client_id = config.google_client_id
        self.leeway = config.jwt_leeway_seconds
        self.clock = clock
        # Google says how long its keys stay valid (Cache-Control max-age);
        # an hour when it does not.
        self.jwks = JwksCache(
            config.google_jwks_url,
            session,
            config.auth_http_timeout_seconds,
            ttl=3600.0,
            honour_cache_control=True,
            label="Google JWKS",
        )

    def verify(self, token: str) -> dict[str, Any]:
        header = unverified_header(token, MALFORMED)
        if header.get("alg") != "RS256" or not isinstance(header.get("kid"), str):
            raise AuthFailure(MALFORMED)
        try:
            claims = self.jwks.decode(
                token,
                header["kid"],
                MALFORMED,
                leeway=self.leeway,
                options={
                    "verify_aud": False,
                    "verify_iss": False,
                    "verify_exp": False,
                    # iat is not compared with our clock (tokeninfo did not either):
                    # a node a second behind would refuse freshly issued tokens.
                    "verify_iat": False,
                },
            )
        except jwt.ImmatureSignatureError:
            raise AuthFailure("Token is not yet valid") from None
        except jwt.PyJWTError:
            raise AuthFailure(MALFORMED) from None
        aud = claims.get("aud")
        if aud != self.client_id:
            raise AuthFailure(
                f"Token client ID does not match. expected: {self.client_id}, actual: {aud}"
            )
        if claims.get("iss") not in ISSUERS:
            raise AuthFailure(f"Invalid token issuer: {claims.get('iss')}")
        exp = claims.get("exp")
        if (
            not isinstance(exp, int | float)
            or isinstance(exp, bool)
            or exp + self.leeway <= self.clock()
        ):
            raise AuthFailure("Token has expired")
        if claims.get("email_verified") not in (True, "true"):
            raise AuthFailure("Email address is not verified")
        return claims
