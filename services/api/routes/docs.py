"""``GET /openapi.json`` and ``/api_docs`` (Swagger UI from the installed
swagger_ui_bundle package: no outside network, no inline script, so our
Content-Security-Policy holds)."""

from __future__ import annotations

import mimetypes

from flask import Blueprint, Response, abort
from swagger_ui_bundle import swagger_ui_path

from services.api.openapi.document import openapi_document
from services.api.web.context import node
from services.api.web.errors import json_response

bp = Blueprint("docs", __name__)

ASSETS = (
    "swagger-ui.css",
    "index.css",
    "swagger-ui-bundle.js",
    "swagger-ui-standalone-preset.js",
    "favicon-32x32.png",
    "favicon-16x16.png",
)

PAGE = """<!DOCTYPE html>
<html lang="en">
<head><meta charset="UTF-8"><title>Key Share Node API</title>
<link rel="stylesheet" href="/api_docs/swagger-ui.css"><link rel="stylesheet" href="/api_docs/index.css">
<link rel="icon" type="image/png" href="/api_docs/favicon-32x32.png" sizes="32x32"></head>
<body><div id="swagger-ui"></div>
<script src="/api_docs/swagger-ui-bundle.js"></script>
<script src="/api_docs/swagger-ui-standalone-preset.js"></script>
<script src="/api_docs/ksnode-init.js"></script>
</body></html>
"""

INITIALIZER = """window.onload = function () {
  window.ui = SwaggerUIBundle({
    url: "/openapi.json",
    dom_id: "#swagger-ui",
    deepLinking: true,
    presets: [SwaggerUIBundle.presets.apis, SwaggerUIStandalonePreset],
    layout: "StandaloneLayout"
  });
};
"""


@bp.get("/openapi.json")
def openapi_json() -> Response:
    return json_response(openapi_document(node().version))


@bp.get("/api_docs")
def api_docs() -> Response:
    return Response(PAGE, content_type="text/html; charset=utf-8")


@bp.get("/api_docs/ksnode-init.js")
def initializer() -> Response:
    return Response(INITIALIZER, content_type="application/javascript; charset=utf-8")


@bp.get("/api_docs/<name>")
def asset(name: str) -> Response:
    if name not in ASSETS:
        abort(404)
    data = (swagger_ui_path / name).read_bytes()
    content_type = mimetypes.guess_type(name)[0] or "application/octet-stream"
    response = Response(data, content_type=content_type)
    response.cache_control.max_age = 86400
    return response
