"""One blueprint per URL family."""

from __future__ import annotations

import importlib

from flask import Flask

# Module names under services.api.routes, each exposing ``bp``.
BLUEPRINT_MODULES = ("status", "keyshare_v1", "keyshare_v2", "commit", "pg_dump", "docs", "metrics")


def register_blueprints(app: Flask) -> None:
    for name in BLUEPRINT_MODULES:
        module = importlib.import_module(f"{__name__}.{name}")
        app.register_blueprint(module.bp)
