"""Auth0 ID tokens (spec §4.4): RS256 only, audience = client id, issuer
``https://<domain>/``, JWKS cached for five minutes with one forced refetch
for an unknown key id."""

from __future__ import annotations

from typing import Any

import jwt
import requests

from services.api.auth.base import AuthFailure
from services.api.auth.jwks import JwksCache, unverified_header
from shared.config import Config


class Auth0Verifier:
    def __init__(self, config: Config, session: requests.Session):
        self.audience = config.auth0_client_id
        self.issuer = f"https://{config.auth0_domain}/"
        self.leeway = config.jwt_leeway_seconds
        self.jwks = JwksCache(
            config.effective_auth0_jwks_url,
            session,
            config.auth_http_timeout_seconds,
            ttl=300.0,
            label="Auth0 JWKS",
        )

    def verify(self, token: str) -> dict[str, Any]:
        kid = unverified_header(token, "Invalid token format").get("kid")
        if not kid or not isinstance(kid, str):
            raise AuthFailure("Missing key id in token header")
        try:
            claims = self.jwks.decode(
                token,
                kid,
                "Unable to find signing key for token",
                audience=self.audience,
                issuer=self.issuer,
                leeway=self.leeway,
                # jsonwebtoken (the reference) never compares
                # iat with the clock; a node a second behind
                # would otherwise refuse fresh tokens.
                options={"verify_iat": False},
            )
        except jwt.ExpiredSignatureError:
            raise AuthFailure("Token has expired") from None
        except jwt.InvalidSignatureError:  # a DecodeError subclass: catch it first
            raise AuthFailure("invalid signature") from None
        except jwt.InvalidAudienceError:
            raise AuthFailure(f"jwt audience invalid. expected: {self.audience}") from None
        except jwt.InvalidIssuerError:
            raise AuthFailure(f"jwt issuer invalid. expected: {self.issuer}") from None
        except jwt.ImmatureSignatureError:
            raise AuthFailure("jwt not active") from None
        except jwt.InvalidAlgorithmError:
            raise AuthFailure("invalid algorithm") from None  # alg none, HS256 confusion
        except jwt.DecodeError:
            raise AuthFailure("jwt malformed") from None
        except jwt.PyJWTError as exc:
            raise AuthFailure(f"Token validation failed: {type(exc).__name__}") from None
        if not claims.get("sub"):
            raise AuthFailure("Token missing subject claim")
        if not claims.get("email"):
            raise AuthFailure("Token missing email claim")
        if claims.get("email_verified") not in (True, "true"):
            raise AuthFailure("Email address is not verified")
        return claims
