"""Building blocks of the OpenAPI document (openapi.py): the request and
response schemas and the helpers that attach every status a route really
sends (the generated-request test in tests/node/test_fuzz_openapi.py holds the
document to that)."""

from __future__ import annotations

from typing import Any

from services.api.ops.health import REASONS
from services.api.web.errors import STATUS_BY_CODE

HEX66 = {
    "type": "string",
    "pattern": "^[0-9a-fA-F]{66}$",
    "description": "33-byte secp256k1 public key, hex",
}
HEX64 = {
    "type": "string",
    "pattern": "^[0-9a-fA-F]{64}$",
    "description": "32-byte ed25519 public key, hex",
}
V1_PUBLIC_KEY = {
    "type": "string",
    "pattern": "^([0-9a-fA-F]{66}|[0-9a-fA-F]{64})$",
    "description": "hex public key: 32 bytes when curve_type is ed25519, else 33 bytes (secp256k1)",
}
SHARE = {"type": "string", "pattern": "^[0-9a-fA-F]{128}$", "description": "64-byte key share, hex"}
AUTH_TYPE = {
    "type": "string",
    "enum": ["google", "auth0", "x", "discord", "telegram"],
    "default": "google",
}
CURVE = {"type": "string", "enum": ["secp256k1", "ed25519"]}
# What any route with a JSON body may answer before its own checks: a body
# that is not JSON, not an object or not UTF-8 (400), too large (413), in a
# charset other than UTF-8 (415); the rate limit (429); the database down (503).
BODY_ERRORS = (
    "INVALID_REQUEST",
    "PAYLOAD_TOO_LARGE",
    "UNSUPPORTED_MEDIA_TYPE",
    "RATE_LIMIT_EXCEEDED",
    "SERVICE_UNAVAILABLE",
)
AUTH_ERRORS = ("UNAUTHORIZED", "UNKNOWN_ERROR")


def obj(properties: dict[str, Any], required: list[str] | None = None) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "object", "properties": properties}
    if required:
        schema["required"] = required
    return schema


def ok_response(data: dict[str, Any] | None = None) -> dict[str, Any]:
    body = {"success": {"type": "boolean", "enum": [True]}}
    if data is not None:
        body["data"] = data
    return {
        "description": "Success",
        "content": {"application/json": {"schema": obj(body, list(body))}},
    }


def json_answer(description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def error_responses(*codes: str | tuple[str, int]) -> dict[str, Any]:
    """One entry per HTTP status, its description listing the codes. A code
    sent with another status than its usual one is given as (code, status)."""
    out: dict[str, Any] = {}
    for item in codes:
        code, status = (item, str(STATUS_BY_CODE[item])) if isinstance(item, str) else item
        status = str(status)
        entry = out.setdefault(status, json_answer("", {"$ref": "#/components/schemas/Error"}))
        if code not in entry["description"].split(", "):
            entry["description"] = ", ".join(filter(None, [entry["description"], code]))
    return out


def post(
    summary: str,
    body: dict[str, Any],
    ok: dict[str, Any],
    errors: tuple[str | tuple[str, int], ...],
    *,
    auth: bool,
    tag: str,
) -> dict[str, Any]:
    operation: dict[str, Any] = {
        "summary": summary,
        "tags": [tag],
        "requestBody": {"required": True, "content": {"application/json": {"schema": body}}},
        "responses": {"200": ok, **error_responses(*errors, *BODY_ERRORS)},
        "security": [{"bearer": []}] if auth else [],
    }
    return {"post": operation}


def get(summary: str, ok: dict[str, Any], **more: dict[str, Any]) -> dict[str, Any]:
    """A GET route: the global rate limit applies to it too."""
    responses = {"200": ok, **more, **error_responses("RATE_LIMIT_EXCEEDED")}
    return {"get": {"summary": summary, "tags": ["Status"], "responses": responses}}


def ops_detail(path: dict[str, Any]) -> dict[str, Any]:
    """A route that answers anonymous callers too, in more detail for OPS_TOKEN."""
    path["get"]["security"] = [{}, {"ops": []}]
    return path


WALLET_KEYS = obj({"secp256k1": HEX66, "ed25519": HEX64})
SECP_ENTRY = obj({"public_key": HEX66, "share": SHARE}, ["public_key", "share"])
ED_ENTRY = obj({"public_key": HEX64, "share": SHARE}, ["public_key", "share"])
WALLET_SHARES = obj({"secp256k1": SECP_ENTRY, "ed25519": ED_ENTRY})
BOTH_WALLET_SHARES = obj({"secp256k1": SECP_ENTRY, "ed25519": ED_ENTRY}, ["secp256k1", "ed25519"])
SHARE_DATA = obj({"share_id": {"type": "string", "format": "uuid"}, "share": SHARE})
EXISTS = obj({"exists": {"type": "boolean"}})
DUMP_ROW = obj(
    {
        "dump_id": {"type": "string", "format": "uuid"},
        "status": {"type": "string", "enum": ["IN_PROGRESS", "COMPLETED", "FAILED", "DELETED"]},
        "dump_path": {"type": "string", "nullable": True},
        "meta": {"type": "object", "nullable": True},
        "created_at": {"type": "string", "format": "date-time"},
        "updated_at": {"type": "string", "format": "date-time"},
    }
)
ERROR = obj(
    {
        "success": {"type": "boolean", "enum": [False]},
        "code": {"type": "string"},
        "msg": {"type": "string"},
    },
    ["success", "code", "msg"],
)
STATUS = obj(
    {
        "is_db_connected": {"type": "boolean"},
        "is_db_backup_checked": {"type": "boolean"},
        "latest_backup_time": {"type": "string", "format": "date-time", "nullable": True},
        "ks_node_public_key": {"type": "string", "nullable": True},
        "launch_time": {"type": "string", "format": "date-time"},
        "git_hash": {"type": "string", "nullable": True},
        "version": {"type": "string"},
    },
    [
        "is_db_connected",
        "is_db_backup_checked",
        "latest_backup_time",
        "ks_node_public_key",
        "launch_time",
        "git_hash",
        "version",
    ],
)
HEALTH = obj(
    {
        "status": {"type": "string", "enum": ["ok", "degraded", "down"]},
        "reasons": {
            "type": "array",
            "items": obj(
                {
                    "reason": {
                        "type": "string",
                        "enum": list(REASONS),
                    },
                    "detail": {"type": "string", "nullable": True},
                },
                ["reason"],
            ),
        },
        "node_id": {
            "type": "string",
            "description": "this node (NODE_ID); programs are its own. This and every field"
            " below: only with the operator token (OPS_TOKEN)",
        },
        "db": obj({"connected": {"type": "boolean"}}, ["connected"]),
        "programs": {
            "type": "object",
            "additionalProperties": obj(
                {
                    "running": {"type": "boolean"},
                    "heartbeat_age_seconds": {"type": "number", "nullable": True},
                },
                ["running", "heartbeat_age_seconds"],
            ),
        },
        "disk": {
            "type": "object",
            "description": "free bytes in LOG_DIR and KSNODE_HOME (DUMP_DIR: under backup)",
            "additionalProperties": obj(
                {
                    "path": {"type": "string"},
                    "free_bytes": {"type": "integer", "nullable": True},
                },
                ["path", "free_bytes"],
            ),
        },
    },
    ["status", "reasons"],
)
