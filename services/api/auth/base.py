"""The contract between the bearer middleware and the identity providers.

A verifier checks one credential and returns the provider's claims (an ID
token's payload, or a user-info object); the bearer middleware then derives
the identity string from them (spec §4.2 table). Any failure is an
``AuthFailure`` whose message becomes the 401 ``msg``: verifiers never let
another exception escape for something a client or a provider did.
"""

from __future__ import annotations

from typing import Any, Protocol

from shared.errors import RequestFailure


class AuthFailure(RequestFailure):
    """The credential was not accepted; ``msg`` is safe to send to the client."""

    def __init__(self, msg: str):
        super().__init__(msg)
        self.msg = msg


class Verifier(Protocol):
    def verify(self, token: str) -> dict[str, Any]:
        """Return the claims / user object, or raise AuthFailure."""
        ...
