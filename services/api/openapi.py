"""The OpenAPI 3 document of every route, correcting the reference's stale
docs (spec §13 W19): void successes are ``{"success":true}``, v2 bodies carry
``auth_type``, DUPLICATE_PUBLIC_KEY is a 409, ``days`` is a body field."""

from __future__ import annotations

from typing import Any

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
SHARE = {"type": "string", "pattern": "^[0-9a-fA-F]{128}$", "description": "64-byte key share, hex"}
AUTH_TYPE = {
    "type": "string",
    "enum": ["google", "auth0", "x", "discord", "telegram"],
    "default": "google",
}
CURVE = {"type": "string", "enum": ["secp256k1", "ed25519"]}


def _obj(properties: dict[str, Any], required: list[str] | None = None) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "object", "properties": properties}
    if required:
        schema["required"] = required
    return schema


def _ok(data: dict[str, Any] | None = None) -> dict[str, Any]:
    body = {"success": {"type": "boolean", "enum": [True]}}
    if data is not None:
        body["data"] = data
    return {
        "description": "Success",
        "content": {"application/json": {"schema": _obj(body, list(body))}},
    }


def _errors(*codes: str) -> dict[str, Any]:
    from services.api.errors import STATUS_BY_CODE

    out: dict[str, Any] = {}
    for code in codes:
        status = str(STATUS_BY_CODE[code])
        entry = out.setdefault(
            status,
            {
                "description": "",
                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
            },
        )
        entry["description"] = ", ".join(filter(None, [entry["description"], code]))
    return out


def _post(
    summary: str,
    body: dict[str, Any] | None,
    ok: dict[str, Any],
    errors: tuple[str, ...],
    *,
    auth: bool,
    tag: str,
) -> dict[str, Any]:
    operation: dict[str, Any] = {
        "summary": summary,
        "tags": [tag],
        "responses": {"200": ok, **_errors(*errors, "RATE_LIMIT_EXCEEDED")},
    }
    if body is not None:
        operation["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": body}},
        }
    operation["security"] = [{"bearer": []}] if auth else []
    return {"post": operation}


AUTH_ERRORS = ("UNAUTHORIZED", "UNKNOWN_ERROR")
WALLET_KEYS = _obj({"secp256k1": HEX66, "ed25519": HEX64})
WALLET_SHARES = _obj(
    {
        "secp256k1": _obj({"public_key": HEX66, "share": SHARE}, ["public_key", "share"]),
        "ed25519": _obj({"public_key": HEX64, "share": SHARE}, ["public_key", "share"]),
    }
)
SHARE_DATA = _obj({"share_id": {"type": "string", "format": "uuid"}, "share": SHARE})
EXISTS = _obj({"exists": {"type": "boolean"}})
DUMP_ROW = _obj(
    {
        "dump_id": {"type": "string", "format": "uuid"},
        "status": {"type": "string", "enum": ["IN_PROGRESS", "COMPLETED", "FAILED", "DELETED"]},
        "dump_path": {"type": "string", "nullable": True},
        "meta": {"type": "object", "nullable": True},
        "created_at": {"type": "string", "format": "date-time"},
        "updated_at": {"type": "string", "format": "date-time"},
    }
)


def _paths() -> dict[str, Any]:
    v1 = "Key shares v1"
    v2 = "Key shares v2"
    admin = "Backups"
    register_v1 = _obj(
        {
            "auth_type": AUTH_TYPE,
            "curve_type": CURVE,
            "public_key": {"type": "string"},
            "share": SHARE,
        },
        ["curve_type", "public_key", "share"],
    )
    return {
        "/": {
            "get": {
                "summary": "Liveness: plain `Ok`",
                "tags": ["Status"],
                "responses": {
                    "200": {
                        "description": "Ok",
                        "content": {"text/html": {"schema": {"type": "string", "enum": ["Ok"]}}},
                    }
                },
            }
        },
        "/status": {
            "get": {
                "summary": "Operator status (the reference's seven fields)",
                "tags": ["Status"],
                "responses": {
                    "200": {
                        "description": "Status",
                        "content": {
                            "application/json": {"schema": {"$ref": "#/components/schemas/Status"}}
                        },
                    }
                },
            }
        },
        "/health": {
            "get": {
                "summary": "Database and per-program heartbeats",
                "tags": ["Status"],
                "responses": {
                    "200": {"description": "Healthy"},
                    "503": {"description": "Degraded"},
                },
            }
        },
        "/metrics": {
            "get": {
                "summary": "Prometheus metrics",
                "tags": ["Status"],
                "responses": {"200": {"description": "Prometheus text format"}},
            }
        },
        "/keyshare/v1/register": _post(
            "Register one wallet and its share",
            register_v1,
            _ok(),
            (
                "PUBLIC_KEY_INVALID",
                "SHARE_INVALID",
                "CURVE_TYPE_NOT_SUPPORTED",
                "DUPLICATE_PUBLIC_KEY",
                *AUTH_ERRORS,
            ),
            auth=True,
            tag=v1,
        ),
        "/keyshare/v1": _post(
            "Fetch the caller's share for a public key (trailing slash accepted)",
            _obj(
                {"auth_type": AUTH_TYPE, "curve_type": CURVE, "public_key": {"type": "string"}},
                ["public_key"],
            ),
            _ok(SHARE_DATA),
            (
                "PUBLIC_KEY_INVALID",
                "USER_NOT_FOUND",
                "WALLET_NOT_FOUND",
                "KEY_SHARE_NOT_FOUND",
                *AUTH_ERRORS,
            ),
            auth=True,
            tag=v1,
        ),
        "/keyshare/v1/check": _post(
            "Does this user hold a share for this key? (no auth)",
            _obj(
                {
                    "user_auth_id": {"type": "string"},
                    "auth_type": AUTH_TYPE,
                    "curve_type": CURVE,
                    "public_key": {"type": "string"},
                },
                ["public_key"],
            ),
            _ok(EXISTS),
            ("PUBLIC_KEY_INVALID", "INVALID_REQUEST"),
            auth=False,
            tag=v1,
        ),
        "/keyshare/v1/reshare": _post(
            "Confirm the stored share is unchanged",
            register_v1,
            _ok(),
            (
                "PUBLIC_KEY_INVALID",
                "SHARE_INVALID",
                "CURVE_TYPE_NOT_SUPPORTED",
                "WALLET_NOT_FOUND",
                "USER_NOT_FOUND",
                "KEY_SHARE_NOT_FOUND",
                "RESHARE_FAILED",
                *AUTH_ERRORS,
            ),
            auth=True,
            tag=v1,
        ),
        "/keyshare/v2": _post(
            "Fetch the caller's shares for one or both curves (trailing slash accepted)",
            _obj({"auth_type": AUTH_TYPE, "wallets": WALLET_KEYS}, ["wallets"]),
            _ok(_obj({"secp256k1": SHARE_DATA, "ed25519": SHARE_DATA})),
            (
                "INVALID_REQUEST",
                "PUBLIC_KEY_INVALID",
                "USER_NOT_FOUND",
                "WALLET_NOT_FOUND",
                "KEY_SHARE_NOT_FOUND",
                *AUTH_ERRORS,
            ),
            auth=True,
            tag=v2,
        ),
        "/keyshare/v2/check": _post(
            "Existence per curve (no auth; no auth_type default)",
            _obj(
                {
                    "user_auth_id": {"type": "string"},
                    "auth_type": AUTH_TYPE,
                    "wallets": WALLET_KEYS,
                },
                ["wallets"],
            ),
            _ok(_obj({"secp256k1": EXISTS, "ed25519": EXISTS})),
            ("INVALID_REQUEST", "PUBLIC_KEY_INVALID"),
            auth=False,
            tag=v2,
        ),
        "/keyshare/v2/register": _post(
            "Register a new user's two wallets (both curves required)",
            _obj({"auth_type": AUTH_TYPE, "wallets": WALLET_SHARES}, ["wallets"]),
            _ok(),
            (
                "INVALID_REQUEST",
                "PUBLIC_KEY_INVALID",
                "SHARE_INVALID",
                "DUPLICATE_PUBLIC_KEY",
                *AUTH_ERRORS,
            ),
            auth=True,
            tag=v2,
        ),
        "/keyshare/v2/register/ed25519": _post(
            "Add an ed25519 wallet to a user that has a secp256k1 wallet",
            _obj(
                {"auth_type": AUTH_TYPE, "public_key": HEX64, "share": SHARE},
                ["public_key", "share"],
            ),
            _ok(),
            (
                "PUBLIC_KEY_INVALID",
                "SHARE_INVALID",
                "USER_NOT_FOUND",
                "WALLET_NOT_FOUND",
                "DUPLICATE_PUBLIC_KEY",
                *AUTH_ERRORS,
            ),
            auth=True,
            tag=v2,
        ),
        "/keyshare/v2/reshare": _post(
            "Confirm stored shares are unchanged (any subset of curves)",
            _obj({"auth_type": AUTH_TYPE, "wallets": WALLET_SHARES}, ["wallets"]),
            _ok(),
            (
                "INVALID_REQUEST",
                "PUBLIC_KEY_INVALID",
                "SHARE_INVALID",
                "USER_NOT_FOUND",
                "WALLET_NOT_FOUND",
                "KEY_SHARE_NOT_FOUND",
                "RESHARE_FAILED",
                *AUTH_ERRORS,
            ),
            auth=True,
            tag=v2,
        ),
        "/keyshare/v2/reshare/register": _post(
            "Receive shares during a reshare (creates the user if missing)",
            _obj({"auth_type": AUTH_TYPE, "wallets": WALLET_SHARES}, ["wallets"]),
            _ok(),
            (
                "INVALID_REQUEST",
                "PUBLIC_KEY_INVALID",
                "SHARE_INVALID",
                "DUPLICATE_PUBLIC_KEY",
                *AUTH_ERRORS,
            ),
            auth=True,
            tag=v2,
        ),
        "/pg_dump/v1/backup": _post(
            "Take a verified backup now (admin password; 5/min)",
            _obj({"password": {"type": "string"}}, ["password"]),
            _ok(
                _obj(
                    {
                        "dumpId": {"type": "string"},
                        "dumpPath": {"type": "string"},
                        "dumpSize": {"type": "integer"},
                        "dumpDuration": {"type": "number"},
                    }
                )
            ),
            ("UNAUTHORIZED", "PG_DUMP_FAILED", "BACKUP_TIMEOUT"),
            auth=False,
            tag=admin,
        ),
        "/pg_dump/v1/restore": _post(
            "Restore a dump file from DUMP_DIR (admin password; 3/min)",
            _obj(
                {"password": {"type": "string"}, "dump_path": {"type": "string"}},
                ["password", "dump_path"],
            ),
            _ok(_obj({"dump_path": {"type": "string"}})),
            (
                "UNAUTHORIZED",
                "INVALID_DUMP_PATH",
                "DUMP_FILE_NOT_FOUND",
                "INVALID_DUMP_FILE",
                "DUMP_FILE_ACCESS_ERROR",
                "PG_RESTORE_FAILED",
                "BACKUP_TIMEOUT",
            ),
            auth=False,
            tag=admin,
        ),
        "/pg_dump/v1/get_backup_history": _post(
            "Backup records, newest first (5/min)",
            _obj(
                {
                    "days": {
                        "type": "number",
                        "minimum": 1,
                        "maximum": 1000,
                        "description": "only the last N days; absent: all",
                    }
                }
            ),
            _ok({"type": "array", "items": DUMP_ROW}),
            ("INVALID_DAYS",),
            auth=False,
            tag=admin,
        ),
    }


def openapi_document(version: str) -> dict[str, Any]:
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "Key Share Node API",
            "version": version,
            "description": "ksnode: wire-compatible with the Oko reference key share node.",
        },
        "servers": [{"url": "/"}],
        "paths": _paths(),
        "components": {
            "securitySchemes": {
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "Google/Auth0 ID token, X/Discord access token, or the Telegram "
                    "login payload as JSON; the provider is the body's auth_type",
                }
            },
            "schemas": {
                "Error": _obj(
                    {
                        "success": {"type": "boolean", "enum": [False]},
                        "code": {"type": "string"},
                        "msg": {"type": "string"},
                    },
                    ["success", "code", "msg"],
                ),
                "Status": _obj(
                    {
                        "is_db_connected": {"type": "boolean"},
                        "is_db_backup_checked": {"type": "boolean"},
                        "latest_backup_time": {
                            "type": "string",
                            "format": "date-time",
                            "nullable": True,
                        },
                        "ks_node_public_key": {"type": "string"},
                        "launch_time": {"type": "string", "format": "date-time"},
                        "git_hash": {"type": "string", "nullable": True},
                        "version": {"type": "string"},
                    }
                ),
            },
        },
    }
