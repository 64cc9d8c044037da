"""Placeholder blueprint; routes are added by their own issue."""

from flask import Blueprint

bp = Blueprint("docs", __name__)
