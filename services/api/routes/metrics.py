"""Placeholder blueprint; routes are added by their own issue."""

from flask import Blueprint

bp = Blueprint("metrics", __name__)
