"""The per-address connection cap (API_MAX_CONNECTIONS_PER_CLIENT) is on by
default, behind trusted proxies too: there the proxies themselves are exempt
(their pools serve every client, issue 26), every other peer is capped."""

from __future__ import annotations

from services.api.server.limits import ConnectionLimits
from shared.config import load_config


def config_with(tmp_path, **env: str):
    secret = tmp_path / "secret"
    secret.write_text("s")
    base = {"KSNODE_HOME": str(tmp_path), "ENCRYPTION_SECRET_PATH": str(secret)}
    return load_config({**base, **env})


def test_no_proxy_keeps_the_cap_and_exempts_nobody(tmp_path):
    limits = ConnectionLimits.from_config(config_with(tmp_path))
    assert (limits.per_client, limits.exempt) == (100, ())


def test_behind_a_proxy_the_cap_stays_and_the_trusted_proxies_are_exempt(tmp_path):
    config = config_with(tmp_path, TRUST_PROXY_HOPS="1", TRUSTED_PROXIES="10.1.2.3")
    limits = ConnectionLimits.from_config(config)
    assert (limits.per_client, limits.exempt) == (100, ("10.1.2.3/32",))


def test_a_cap_set_explicitly_behind_a_proxy_is_kept(tmp_path):
    config = config_with(tmp_path, TRUST_PROXY_HOPS="2", API_MAX_CONNECTIONS_PER_CLIENT="500")
    assert config.api_max_connections_per_client == 500
