"""The OpenAPI document covers every route and /api_docs works offline."""

import re


def test_every_route_is_documented_and_vice_versa(api, config, db, cipher):
    from services.api.app import create_app
    from tests.conftest import build_node_context

    app = create_app(build_node_context(config, db, cipher))
    served = set()
    for rule in app.url_map.iter_rules():
        if (
            rule.endpoint == "static"
            or rule.rule.startswith("/api_docs")
            or rule.rule == "/openapi.json"
        ):
            continue
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            served.add((rule.rule, method.lower()))
    document = api.get("/openapi.json").json()
    documented = {(path, method) for path, ops in document["paths"].items() for method in ops}
    assert served == documented
    assert document["openapi"].startswith("3.")


def test_errors_reference_the_envelope_and_codes_map_to_statuses(api):
    document = api.get("/openapi.json").json()
    register = document["paths"]["/keyshare/v2/register"]["post"]
    assert "DUPLICATE_PUBLIC_KEY" in register["responses"]["409"]["description"]
    assert register["security"] == [{"bearer": []}]
    assert (
        "auth_type"
        in register["requestBody"]["content"]["application/json"]["schema"]["properties"]
    )
    ok_schema = register["responses"]["200"]["content"]["application/json"]["schema"]
    assert "data" not in ok_schema["properties"]  # void success is {"success":true}
    assert document["paths"]["/keyshare/v2/check"]["post"]["security"] == []


def test_api_docs_page_uses_only_local_assets(api):
    page = api.get("/api_docs")
    assert page.status_code == 200 and page.headers["Content-Type"].startswith("text/html")
    sources = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert sources and all(s.startswith("/api_docs/") for s in sources)
    assert "<script>" not in page.text  # no inline script: the CSP forbids it
    for source in sources:
        asset = api.get(source)
        assert asset.status_code == 200, source
        if source.endswith(".js"):
            assert "javascript" in asset.headers["Content-Type"]
        if source.endswith(".css"):
            assert asset.headers["Content-Type"].startswith("text/css")
    assert '"/openapi.json"' in api.get("/api_docs/ksnode-init.js").text
    assert api.get("/api_docs/../pyproject.toml").status_code == 404
    assert api.get("/api_docs/nope.js").status_code == 404
