"""The one error type of the API and the envelope it renders to (spec §3)."""

from __future__ import annotations

import json
from typing import Any

from flask import Response

from services.api.web.jsvalues import escape_lone_surrogates
from shared.errors import RequestFailure

# code -> HTTP status (spec §3, plus our codes for what the reference answered
# with an HTML page: unknown routes, wrong methods, bad bodies).
STATUS_BY_CODE: dict[str, int] = {
    "UNKNOWN_ERROR": 500,
    "INVALID_REQUEST": 400,
    "DUPLICATE_PUBLIC_KEY": 409,
    "USER_NOT_FOUND": 404,
    "WALLET_NOT_FOUND": 404,
    "UNAUTHORIZED": 401,
    "KEY_SHARE_NOT_FOUND": 404,
    "PUBLIC_KEY_INVALID": 400,
    "SHARE_INVALID": 400,
    "PG_DUMP_FAILED": 500,
    "INVALID_DAYS": 400,
    "INVALID_DUMP_PATH": 400,
    "INVALID_DUMP_FILE": 400,
    "DUMP_FILE_ACCESS_ERROR": 400,
    "PG_RESTORE_FAILED": 500,
    "DUMP_FILE_NOT_FOUND": 400,
    "RATE_LIMIT_EXCEEDED": 429,
    "CURVE_TYPE_NOT_SUPPORTED": 400,
    "RESHARE_FAILED": 500,  # a share mismatch is 409 instead (RESHARE_MISMATCH_STATUS)
    "USER_ALREADY_REGISTERED": 409,
    # commit-reveal (spec commit-reveal §7)
    "SESSION_ALREADY_EXISTS": 409,
    "SESSION_NOT_FOUND": 404,
    "SESSION_EXPIRED": 410,
    "INVALID_SIGNATURE": 400,
    "API_ALREADY_CALLED": 409,
    # ours
    "NOT_FOUND": 404,
    "METHOD_NOT_ALLOWED": 405,
    "PAYLOAD_TOO_LARGE": 413,
    "UNSUPPORTED_MEDIA_TYPE": 415,
    "SERVICE_UNAVAILABLE": 503,
    "BACKUP_TIMEOUT": 504,
    "BACKUP_BUSY": 409,
    "BACKUP_WORKER_DOWN": 503,
    "ADMIN_DISABLED": 503,
    # a ksn3 share whose owner or identity was changed in the database
    "SHARE_OWNER_MISMATCH": 409,
    # the HTTP server's own answers, before the application (http_errors.py)
    "REQUEST_TIMEOUT": 408,
    "HEADERS_TOO_LARGE": 431,
    "NOT_IMPLEMENTED": 501,
}

# The reference answers a reshare whose share differs from the stored one with
# 500 RESHARE_FAILED (spec W14). It is the client's input, not a server fault:
# same code and message, status 409 (docs/differences.md).
RESHARE_MISMATCH_STATUS = 409

JSON_CONTENT_TYPE = "application/json; charset=utf-8"


class ApiError(RequestFailure):
    """Raised anywhere in a request; rendered as the §3 error envelope."""

    def __init__(self, code: str, msg: str, status: int | None = None):
        super().__init__(msg)
        self.code = code
        self.msg = msg
        self.status = status or STATUS_BY_CODE.get(code, 500)


def dumps(value: Any) -> str:
    """Compact JSON like JavaScript's JSON.stringify (no spaces, UTF-8 kept,
    unpaired surrogates escaped): a message echoing hostile text still renders."""
    return escape_lone_surrogates(json.dumps(value, separators=(",", ":"), ensure_ascii=False))


def json_response(value: Any, status: int = 200) -> Response:
    return Response(dumps(value), status=status, content_type=JSON_CONTENT_TYPE)


def ok(data: Any = None, *, with_data: bool = True) -> Response:
    """``{"success":true,"data":...}``; without data exactly ``{"success":true}``."""
    if not with_data:
        return Response('{"success":true}', status=200, content_type=JSON_CONTENT_TYPE)
    return json_response({"success": True, "data": data})


def error_response(code: str, msg: str, status: int | None = None) -> Response:
    body = {"success": False, "code": code, "msg": msg}
    return json_response(body, status or STATUS_BY_CODE.get(code, 500))
