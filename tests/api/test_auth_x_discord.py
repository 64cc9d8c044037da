"""X and Discord access tokens through the fake provider's user-info
endpoints (spec §4.5, §4.6): one pooled session, a deadline on the whole
answer, and every provider failure an AuthFailure with a clear message."""

from __future__ import annotations

import time

import pytest

from services.api.auth.discord import DiscordVerifier
from services.api.auth.outbound import MAX_ANSWER_BYTES
from services.api.auth.providers import http_session
from services.api.auth.x import XVerifier
from shared.config import Config
from tests.support.fakes.idp import (
    FakeIdentityProvider,
    auth_failure,
    idp_fixture,  # noqa: F401 - the module's `idp` fixture
)


@pytest.fixture()
def x(idp: FakeIdentityProvider) -> XVerifier:
    return XVerifier(Config(**idp.config_overrides()), http_session())


@pytest.fixture()
def discord(idp: FakeIdentityProvider) -> DiscordVerifier:
    return DiscordVerifier(Config(**idp.config_overrides()), http_session())


def test_x_returns_the_data_object_and_sends_the_token_as_bearer(x, idp):
    user = {"id": "1440", "name": "N", "username": "u"}
    idp.answer("x-ok", 200, {"data": user})
    assert x.verify("x-ok") == user
    assert idp.seen_authorization[-1] == "Bearer x-ok"


@pytest.mark.parametrize("status", [400, 401, 403, 429, 500, 302])
def test_x_non_2xx_is_invalid_token(x, idp, status):
    idp.answer(f"x-{status}", status, {"title": "Unauthorized"})
    assert auth_failure(x, f"x-{status}") == "Invalid or malformed token"


@pytest.mark.parametrize(
    "body,message",
    [
        ({"errors": [{"detail": "nope"}]}, "Token validation failed: X user info has no data"),
        ({"data": None}, "Token validation failed: X user info has no data"),
        ({"data": ["1"]}, "Token validation failed: X user info has no data"),
        ({"data": "1"}, "Token validation failed: X user info has no data"),
        ([1, 2], "Token validation failed: X user info is not a JSON object"),
        ("<html>maintenance</html>", "Token validation failed: X user info is not a JSON object"),
    ],
)
def test_x_answer_without_a_user_object(x, idp, body, message):
    idp.answer("x-odd", 200, body)
    assert auth_failure(x, "x-odd") == message


def test_discord_returns_the_user_and_does_not_require_verified(discord, idp):
    idp.answer("d-ok", 200, {"id": "7700", "email": "d@e.f", "verified": False})
    assert discord.verify("d-ok")["id"] == "7700"


@pytest.mark.parametrize(
    "body", [{"id": "78"}, {"id": "78", "email": ""}, {"id": "78", "email": None}]
)
def test_discord_requires_an_email(discord, idp, body):
    idp.answer("d-noemail", 200, body)
    assert auth_failure(discord, "d-noemail") == "Can't get email from Discord token"


def test_discord_non_2xx_message_carries_status_and_text_but_never_the_token(discord, idp):
    idp.answer("d-401", 401, '{"message": "401: Unauthorized", "code": 0}')
    assert (
        auth_failure(discord, "d-401")
        == 'Failed to get user info: 401 {"message": "401: Unauthorized", "code": 0}'
    )
    secret = "d-echo-" + "s" * 40
    idp.answer(secret, 400, f"invalid token {secret} " + "x" * 1000)
    message = auth_failure(discord, secret)
    assert secret not in message and "***" in message
    assert len(message) < 260  # the provider's text is cut short


def test_discord_non_json_answer(discord, idp):
    idp.answer("d-html", 200, "<html>")
    assert (
        auth_failure(discord, "d-html")
        == "Token validation failed: Discord user info is not a JSON object"
    )


@pytest.mark.parametrize("provider", ["x", "discord"])
def test_slow_provider_fails_at_the_timeout(request, idp, provider):
    verifier = request.getfixturevalue(provider)
    idp.answer("slow", 200, {"data": {"id": "1"}, "id": "1", "email": "e"}, delay=3.0)
    started = time.monotonic()
    label = "X" if provider == "x" else "Discord"
    assert (
        auth_failure(verifier, "slow")
        == f"Token validation failed: {label} user info did not answer in time"
    )
    print(
        f"slow {provider}: failed after {time.monotonic() - started:.2f} s (timeout 1 s, delay 3 s)"
    )


def test_dripping_body_is_cut_at_the_deadline(x, idp):
    # Headers at once, then one byte every 0.1 s: requests' per-read timeout
    # alone would wait for all of it (several seconds).
    idp.answer("drip", 200, {"data": {"id": "1", "name": "n" * 60}}, drip=0.1)
    assert auth_failure(x, "drip") == "Token validation failed: X user info did not answer in time"


def test_oversized_answer_is_refused(discord, idp):
    idp.answer("huge", 200, {"id": "1", "email": "e", "pad": "p" * MAX_ANSWER_BYTES})
    assert (
        auth_failure(discord, "huge")
        == f"Token validation failed: Discord user info answer larger than {MAX_ANSWER_BYTES} bytes"
    )


def test_provider_unreachable():
    config = Config(
        x_userinfo_url="http://127.0.0.1:9/me",
        discord_userinfo_url="http://127.0.0.1:9/me",
        auth_http_timeout_seconds=1.0,
    )
    session = http_session()
    assert (
        auth_failure(XVerifier(config, session), "t")
        == "Token validation failed: X user info connection failed"
    )
    assert (
        auth_failure(DiscordVerifier(config, session), "t")
        == "Token validation failed: Discord user info connection failed"
    )


def test_calls_share_pooled_connections(x, discord, idp):
    idp.answer("pool-x", 200, {"data": {"id": "1"}})
    before = len(idp.seen_client_ports)
    for _ in range(10):
        x.verify("pool-x")
        auth_failure(x, "unknown-token")
    ports = set(idp.seen_client_ports[before:])
    assert len(idp.seen_client_ports) - before == 20 and len(ports) == 1


def test_no_cookie_travels_from_one_users_call_to_the_next(x, idp):
    idp.answer("cookie-a", 200, {"data": {"id": "1"}})
    idp.answer("cookie-b", 200, {"data": {"id": "2"}})
    x.verify("cookie-a")  # the fake answers with Set-Cookie
    x.verify("cookie-b")
    assert idp.seen_cookies[-1] is None


def test_slow_headers_then_dripping_body_share_one_deadline(x, idp):
    # 0.6 s before the headers, then ~0.65 s of dripping body (43 bytes):
    # each phase alone fits the 1 s timeout, together they do not.
    idp.answer("late-drip", 200, {"data": {"id": "1", "name": "n" * 10}}, delay=0.6, drip=0.015)
    assert (
        auth_failure(x, "late-drip")
        == "Token validation failed: X user info did not answer in time"
    )


def test_a_slow_but_timely_answer_is_accepted(x, idp):
    idp.answer("timely", 200, {"data": {"id": "9"}}, delay=0.3)
    assert x.verify("timely") == {"id": "9"}
