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
