"""One blueprint per URL family."""

from __future__ import annotations

import importlib
from types import ModuleType

from flask import Flask

# Module names under services.api.routes, each exposing ``bp``.
BLUEPRINT_MODULES = ("status", "keyshare_v1", "keyshare_v2", "commit", "pg_dump", "docs", "metrics")


def blueprint_modules() -> list[ModuleType]:
    return [importlib.import_module(f"{__name__}.{name}") for name in BLUEPRINT_MODULES]


def register_blueprints(app: Flask) -> None:
    for module in blueprint_modules():
        app.register_blueprint(module.bp)
