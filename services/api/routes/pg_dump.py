"""Placeholder blueprint; routes are added by their own issue."""

from flask import Blueprint

bp = Blueprint("pg_dump", __name__)
