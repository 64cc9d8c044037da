"""Placeholder blueprint; routes are added by their own issue."""

from flask import Blueprint

bp = Blueprint("keyshare_v2", __name__)
