"""Behind trusted proxies the per-address connection cap is off unless set:
every connection comes from the proxy (issue 26)."""

from __future__ import annotations

from shared.config import default_connections_per_client, load_config


def config_with(tmp_path, **env: str):
    secret = tmp_path / "secret"
    secret.write_text("s")
    base = {"KSNODE_HOME": str(tmp_path), "ENCRYPTION_SECRET_PATH": str(secret)}
    return load_config({**base, **env})


def test_no_proxy_keeps_the_cap(tmp_path):
    assert config_with(tmp_path).api_max_connections_per_client == 100
    assert default_connections_per_client(0, 100) == 100
    assert default_connections_per_client(1, 100) == 0


def test_a_trusted_proxy_lifts_the_cap_by_default(tmp_path):
    assert config_with(tmp_path, TRUST_PROXY_HOPS="1").api_max_connections_per_client == 0


def test_a_cap_set_explicitly_behind_a_proxy_is_kept(tmp_path):
    config = config_with(tmp_path, TRUST_PROXY_HOPS="2", API_MAX_CONNECTIONS_PER_CLIENT="500")
    assert config.api_max_connections_per_client == 500
