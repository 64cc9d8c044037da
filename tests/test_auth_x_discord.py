"""X and Discord access tokens through the user-info endpoints of a fake
provider (spec §4.5, §4.6), with a short timeout."""

import time
from dataclasses import replace

import pytest

from services.api.auth.base import AuthFailure
from services.api.auth.discord import DiscordVerifier
from services.api.auth.providers import http_session
from services.api.auth.x import XVerifier
from tests.fakes.idp import FakeIdentityProvider


@pytest.fixture(scope="module")
def idp():
    provider = FakeIdentityProvider()
    yield provider
    provider.close()


@pytest.fixture()
def verifiers(idp, config):
    cfg = replace(config, **idp.config_overrides())
    session = http_session()
    return XVerifier(cfg, session), DiscordVerifier(cfg, session)


def failure(verifier, token) -> str:
    with pytest.raises(AuthFailure) as info:
        verifier.verify(token)
    return info.value.msg


def test_x_returns_the_data_object(idp, verifiers):
    x, _ = verifiers
    idp.userinfo["x-ok"] = (200, {"data": {"id": "44", "name": "n", "username": "u"}}, 0)
    assert x.verify("x-ok") == {"id": "44", "name": "n", "username": "u"}


def test_x_failures(idp, verifiers):
    x, _ = verifiers
    assert failure(x, "unknown") == "Invalid or malformed token"
    idp.userinfo["x-nodata"] = (200, {"errors": []}, 0)
    assert "no data" in failure(x, "x-nodata")
    idp.userinfo["x-html"] = (200, "<html>", 0)
    assert "no data" in failure(x, "x-html")


def test_discord_requires_email(idp, verifiers):
    _, discord = verifiers
    idp.userinfo["d-ok"] = (200, {"id": "77", "email": "d@e.f", "verified": False}, 0)
    assert discord.verify("d-ok")["id"] == "77"
    idp.userinfo["d-noemail"] = (200, {"id": "78"}, 0)
    assert failure(discord, "d-noemail") == "Can't get email from Discord token"
    assert failure(discord, "bad").startswith("Failed to get user info: 401 ")


def test_slow_provider_fails_within_the_timeout(idp, verifiers):
    x, discord = verifiers
    idp.userinfo["slow"] = (200, {"data": {"id": "1"}, "id": "1", "email": "e"}, 3)
    for verifier in (x, discord):
        started = time.monotonic()
        assert "did not answer in time" in failure(verifier, "slow")
        assert time.monotonic() - started < 2.5  # AUTH_HTTP_TIMEOUT_SECONDS=1, not the 3 s delay


def test_provider_down(config):
    cfg = replace(config, x_userinfo_url="http://127.0.0.1:9/me", discord_userinfo_url="http://127.0.0.1:9/me")
    session = http_session()
    assert "cannot reach X" in failure(XVerifier(cfg, session), "t")
    assert "cannot reach Discord" in failure(DiscordVerifier(cfg, session), "t")
