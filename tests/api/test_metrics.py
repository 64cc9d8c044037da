"""GET /metrics parses as Prometheus text and moves with traffic."""

from prometheus_client.parser import text_string_to_metric_families

from tests.support.ops import OPS_HEADERS


def scrape(api) -> dict[tuple[str, tuple], float]:
    r = api.get("/metrics", headers=OPS_HEADERS)
    assert r.status_code == 200
    assert r.headers["Content-Type"].startswith("text/plain")
    samples = {}
    for family in text_string_to_metric_families(r.text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples, name, **labels):
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def test_request_counters_and_histograms_move(api):
    before = scrape(api)
    for _ in range(3):
        api.get("/status")
    api.post("/keyshare/v2/check", json={})
    after = scrape(api)
    assert (
        value(after, "ksnode_http_requests_total", route="/status", method="GET", status="200")
        == value(before, "ksnode_http_requests_total", route="/status", method="GET", status="200")
        + 3
    )
    assert (
        value(
            after,
            "ksnode_http_requests_total",
            route="/keyshare/v2/check",
            method="POST",
            status="400",
        )
        >= 1
    )
    assert (
        value(after, "ksnode_http_request_duration_seconds_count", route="/status", method="GET")
        >= 3
    )


def test_node_gauges(api, db):
    with db.cursor() as cur:
        cur.execute('SELECT count(*) FROM "2_key_shares"')
        shares = cur.fetchone()[0]
    samples = scrape(api)
    assert value(samples, "ksnode_db_up") == 1
    assert value(samples, "ksnode_key_shares") == shares
    assert any(name == "ksnode_db_pool_connections_in_use" for name, _ in samples)


def test_unknown_routes_do_not_create_new_series(api):
    for i in range(5):
        api.get(f"/random/{i}")
    routes = {
        dict(labels).get("route")
        for name, labels in scrape(api)
        if name == "ksnode_http_requests_total"
    }
    assert not any(r and r.startswith("/random") for r in routes)
