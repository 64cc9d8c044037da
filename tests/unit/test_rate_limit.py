"""Per-client rate limiting (spec §2.5) with our proxy awareness."""

import pytest


@pytest.fixture(scope="module")
def limited(start_api):
    return start_api(rate_limit_per_minute=3)


@pytest.fixture(scope="module")
def proxied(start_api):
    return start_api(rate_limit_per_minute=2, trust_proxy_hops=1)


def test_headers_then_429_with_reference_body(limited):
    responses = [limited.get("/status") for _ in range(4)]
    assert [r.status_code for r in responses] == [200, 200, 200, 429]
    first = responses[0].headers
    assert first["RateLimit-Policy"] == "3;w=60"
    assert first["RateLimit-Limit"] == "3"
    assert first["RateLimit-Remaining"] == "2"
    assert 0 < int(first["RateLimit-Reset"]) <= 60
    rejected = responses[3]
    assert rejected.content == (
        b'{"success":false,"code":"RATE_LIMIT_EXCEEDED",'
        b'"msg":"Too many requests, please try again after 60 seconds"}'
    )
    assert rejected.headers["RateLimit-Remaining"] == "0"
    assert rejected.headers["Retry-After"] == rejected.headers["RateLimit-Reset"]
    # security headers and CORS on the 429 too
    assert rejected.headers["X-Frame-Options"] == "SAMEORIGIN"
    assert rejected.headers["Access-Control-Allow-Origin"] == "*"


def test_preflights_are_not_counted(limited):
    for _ in range(5):
        r = limited.request(
            "OPTIONS", "/keyshare/v2", headers={"Access-Control-Request-Method": "POST"}
        )
        assert r.status_code == 204


def test_forwarded_for_ignored_without_trusted_proxies(start_api):
    server = start_api(rate_limit_per_minute=1)
    assert server.get("/", headers={"X-Forwarded-For": "1.1.1.1"}).status_code == 200
    assert server.get("/", headers={"X-Forwarded-For": "2.2.2.2"}).status_code == 429


def test_trusted_proxy_hop_buckets_by_forwarded_client(proxied):
    for client in ("10.0.0.1", "10.0.0.2"):
        headers = {"X-Forwarded-For": f"{client}"}
        assert [proxied.get("/", headers=headers).status_code for _ in range(3)] == [200, 200, 429]


def test_spoofed_left_entries_do_not_escape_with_one_hop(proxied):
    # The proxy appends the real client; a client-supplied left part is ignored.
    codes = [
        proxied.get("/", headers={"X-Forwarded-For": f"9.9.9.{i}, 10.0.0.3"}).status_code
        for i in range(3)
    ]
    assert codes == [200, 200, 429]


def test_forwarded_for_from_a_peer_that_is_not_a_trusted_proxy_is_ignored(start_api):
    """TRUST_PROXY_HOPS set, but the port reached directly (the peer, here
    loopback, is not in TRUSTED_PROXIES): a header per request does not buy a
    fresh budget; the peer's own address is the key."""
    direct = start_api(
        rate_limit_per_minute=2, trust_proxy_hops=1, trusted_proxies=("192.0.2.0/24",)
    )
    codes = [
        direct.get("/", headers={"X-Forwarded-For": f"10.0.7.{i}"}).status_code for i in range(4)
    ]
    assert codes == [200, 200, 429, 429]


def test_trusted_proxies_setting(tmp_path):
    from shared.config import ConfigError, load_config

    secret = tmp_path / "secret"
    secret.write_text("s")
    base = {"KSNODE_HOME": str(tmp_path), "ENCRYPTION_SECRET_PATH": str(secret)}
    default = load_config(base).trusted_proxies
    assert "127.0.0.0/8" in default and "::1/128" in default and "10.0.0.0/8" in default
    config = load_config({**base, "TRUSTED_PROXIES": " 203.0.113.7, 2001:db8::/32 ,"})
    assert config.trusted_proxies == ("203.0.113.7/32", "2001:db8::/32")
    with pytest.raises(ConfigError, match="TRUSTED_PROXIES: 'nginx' is not an IP address"):
        load_config({**base, "TRUSTED_PROXIES": "127.0.0.1,nginx"})


def test_is_trusted_proxy_reads_ipv4_mapped_peers():
    from services.api.web.ratelimit import is_trusted_proxy

    trusted = ("127.0.0.0/8",)
    assert is_trusted_proxy("127.0.0.1", trusted) and is_trusted_proxy("::ffff:127.0.0.1", trusted)
    assert not is_trusted_proxy("203.0.113.9", trusted) and not is_trusted_proxy("junk", trusted)
