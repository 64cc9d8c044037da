"""Security headers (helmet defaults, spec §2.2) and CORS (spec §2.3)."""

from __future__ import annotations

from flask import Request, Response

SECURITY_HEADERS: tuple[tuple[str, str], ...] = (
    (
        "Content-Security-Policy",
        "default-src 'self';base-uri 'self';font-src 'self' https: data:;form-action 'self';"
        "frame-ancestors 'self';img-src 'self' data:;object-src 'none';script-src 'self';"
        "script-src-attr 'none';style-src 'self' https: 'unsafe-inline'",
    ),
    ("Cross-Origin-Opener-Policy", "same-origin"),
    ("Cross-Origin-Resource-Policy", "same-origin"),
    ("Origin-Agent-Cluster", "?1"),
    ("Referrer-Policy", "no-referrer"),
    ("Strict-Transport-Security", "max-age=31536000; includeSubDomains"),
    ("X-Content-Type-Options", "nosniff"),
    ("X-DNS-Prefetch-Control", "off"),
    ("X-Download-Options", "noopen"),
    ("X-Frame-Options", "SAMEORIGIN"),
    ("X-Permitted-Cross-Domain-Policies", "none"),
    ("X-XSS-Protection", "0"),
)

CORS_ALLOW_METHODS = "GET,HEAD,PUT,PATCH,POST,DELETE"


class CommonHeaders:
    """WSGI middleware adding the security and CORS headers to every
    response (spec §2.2-2.3), including Flask's own error pages. Appending
    to the WSGI header list is far cheaper than Werkzeug's Headers.set."""

    STATIC = [*SECURITY_HEADERS, ("Access-Control-Allow-Origin", "*")]

    def __init__(self, wsgi_app):
        self.wsgi_app = wsgi_app

    def __call__(self, environ, start_response):
        def add_headers(status, headers, exc_info=None):
            headers.extend(self.STATIC)
            return start_response(status, headers, exc_info)

        return self.wsgi_app(environ, add_headers)


def is_preflight(request: Request) -> bool:
    return request.method == "OPTIONS" and "Access-Control-Request-Method" in request.headers


def preflight_response(request: Request) -> Response:
    """204 with the requested headers echoed verbatim (cors package defaults)."""
    response = Response(status=204)
    response.headers["Access-Control-Allow-Methods"] = CORS_ALLOW_METHODS
    requested = request.headers.get("Access-Control-Request-Headers")
    if requested is not None:
        response.headers["Access-Control-Allow-Headers"] = requested
    response.headers["Vary"] = "Access-Control-Request-Headers"
    response.headers["Content-Length"] = "0"  # waitress drops it on a 204 (RFC 9110)
    del response.headers["Content-Type"]  # no body, no type (Flask adds text/html)
    return response
