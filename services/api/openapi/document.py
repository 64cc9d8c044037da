"""The OpenAPI 3 document of every route, correcting the reference's stale
docs (spec §13 W19): void successes are ``{"success":true}``, v2 bodies carry
``auth_type``, DUPLICATE_PUBLIC_KEY is a 409, ``days`` is a body field. Every
status a route really sends is listed (tests/node/test_fuzz_openapi.py)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from services.api.openapi.commit_reveal import TAG, add_commit_reveal
from services.api.openapi.schemas import (
    AUTH_ERRORS,
    AUTH_TYPE,
    BOTH_WALLET_SHARES,
    CURVE,
    DUMP_ROW,
    ERROR,
    EXISTS,
    HEALTH,
    HEX64,
    SHARE,
    SHARE_DATA,
    STATUS,
    V1_PUBLIC_KEY,
    WALLET_KEYS,
    WALLET_SHARES,
    error_responses,
    get,
    json_answer,
    obj,
    ok_response,
    ops_detail,
    post,
)
from services.api.web.errors import RESHARE_MISMATCH_STATUS

# Error codes that several routes share, in the order each route checks them
# (error_responses lists a status's codes in the order given).
V1_SHARE_ERRORS = ("PUBLIC_KEY_INVALID", "SHARE_INVALID", "CURVE_TYPE_NOT_SUPPORTED")
V2_SHARE_ERRORS = ("INVALID_REQUEST", "PUBLIC_KEY_INVALID", "SHARE_INVALID")
OWNER_ERRORS = ("USER_NOT_FOUND", "WALLET_NOT_FOUND")
STORED_SHARE_ERRORS = ("KEY_SHARE_NOT_FOUND", "SHARE_OWNER_MISMATCH")
RESHARE_ERRORS = (
    *STORED_SHARE_ERRORS,
    "RESHARE_FAILED",
    ("RESHARE_FAILED", RESHARE_MISMATCH_STATUS),
)
V2_REGISTER_ERRORS = (*V2_SHARE_ERRORS, "DUPLICATE_PUBLIC_KEY")

Errors = tuple[str | tuple[str, int], ...]


def _authenticated(tag: str) -> Callable[[str, dict[str, Any], dict[str, Any], Errors], Any]:
    """post() for the routes of ``tag`` that take the bearer credential: they
    may also answer its errors."""

    def route(summary: str, body: dict[str, Any], ok: dict[str, Any], errors: Errors) -> Any:
        return post(summary, body, ok, (*errors, *AUTH_ERRORS), auth=True, tag=tag)

    return route


def _v2_body(wallets: dict[str, Any]) -> dict[str, Any]:
    return obj({"auth_type": AUTH_TYPE, "wallets": wallets}, ["wallets"])


def _paths() -> dict[str, Any]:
    v1 = "Key shares v1"
    v2 = "Key shares v2"
    admin = "Backups"
    v1_auth = _authenticated(v1)
    v2_auth = _authenticated(v2)
    register_v1 = obj(
        {
            "auth_type": AUTH_TYPE,
            "curve_type": CURVE,
            "public_key": V1_PUBLIC_KEY,
            "share": SHARE,
        },
        ["curve_type", "public_key", "share"],
    )
    return {
        "/": get(
            "Liveness: plain `Ok`",
            {
                "description": "Ok",
                "content": {"text/html": {"schema": {"type": "string", "enum": ["Ok"]}}},
            },
        ),
        "/status": get(
            "Operator status (the reference's seven fields)",
            json_answer("Status", {"$ref": "#/components/schemas/Status"}),
        ),
        "/health": ops_detail(
            get(
                "ok / degraded (each reason named) / down. Anonymous: status and reason names"
                " only; with the operator token (OPS_TOKEN): node id, programs, disks, backups",
                json_answer("ok or degraded", {"$ref": "#/components/schemas/Health"}),
                **{
                    "503": json_answer("down: no database", {"$ref": "#/components/schemas/Health"})
                },
            )
        ),
        "/metrics": ops_detail(
            get(
                "Prometheus metrics with the operator token (OPS_TOKEN). Anonymous: 401 when"
                " OPS_TOKEN is set, else only ksnode_db_up, ksnode_health_status and"
                " ksnode_health_reason",
                {
                    "description": "Prometheus text format",
                    "content": {"text/plain": {"schema": {"type": "string"}}},
                },
                **error_responses("UNAUTHORIZED"),
            )
        ),
        "/keyshare/v1/register": v1_auth(
            "Register one wallet and its share",
            register_v1,
            ok_response(),
            (*V1_SHARE_ERRORS, "DUPLICATE_PUBLIC_KEY"),
        ),
        "/keyshare/v1": v1_auth(
            "Fetch the caller's share for a public key (trailing slash accepted)",
            obj(
                {"auth_type": AUTH_TYPE, "curve_type": CURVE, "public_key": V1_PUBLIC_KEY},
                ["public_key"],
            ),
            ok_response(SHARE_DATA),
            ("PUBLIC_KEY_INVALID", *OWNER_ERRORS, *STORED_SHARE_ERRORS),
        ),
        "/keyshare/v1/check": post(
            "Does this user hold a share for this key? (no auth)",
            obj(
                {
                    "user_auth_id": {"type": "string"},
                    "auth_type": AUTH_TYPE,
                    "curve_type": CURVE,
                    "public_key": V1_PUBLIC_KEY,
                },
                ["public_key"],
            ),
            ok_response(EXISTS),
            ("PUBLIC_KEY_INVALID",),
            auth=False,
            tag=v1,
        ),
        "/keyshare/v1/reshare": v1_auth(
            "Confirm the stored share is unchanged",
            register_v1,
            ok_response(),
            # v1 looks the wallet up before the user
            (*V1_SHARE_ERRORS, *reversed(OWNER_ERRORS), *RESHARE_ERRORS),
        ),
        "/keyshare/v2": v2_auth(
            "Fetch the caller's shares for one or both curves (trailing slash accepted)",
            _v2_body(WALLET_KEYS),
            ok_response(obj({"secp256k1": SHARE_DATA, "ed25519": SHARE_DATA})),
            ("INVALID_REQUEST", "PUBLIC_KEY_INVALID", *OWNER_ERRORS, *STORED_SHARE_ERRORS),
        ),
        "/keyshare/v2/check": post(
            "Existence per curve (no auth; no auth_type default)",
            obj(
                {
                    "user_auth_id": {"type": "string"},
                    "auth_type": AUTH_TYPE,
                    "wallets": WALLET_KEYS,
                },
                ["wallets"],
            ),
            ok_response(obj({"secp256k1": EXISTS, "ed25519": EXISTS})),
            ("INVALID_REQUEST", "PUBLIC_KEY_INVALID"),
            auth=False,
            tag=v2,
        ),
        "/keyshare/v2/register": v2_auth(
            "Register a new user's two wallets (both curves required)",
            _v2_body(BOTH_WALLET_SHARES),
            ok_response(),
            V2_REGISTER_ERRORS,
        ),
        "/keyshare/v2/register/ed25519": v2_auth(
            "Add an ed25519 wallet to a user that has a secp256k1 wallet",
            obj(
                {"auth_type": AUTH_TYPE, "public_key": HEX64, "share": SHARE},
                ["public_key", "share"],
            ),
            ok_response(),
            ("PUBLIC_KEY_INVALID", "SHARE_INVALID", *OWNER_ERRORS, "DUPLICATE_PUBLIC_KEY"),
        ),
        "/keyshare/v2/reshare": v2_auth(
            "Confirm stored shares are unchanged (any subset of curves)",
            _v2_body(WALLET_SHARES),
            ok_response(),
            (*V2_SHARE_ERRORS, *OWNER_ERRORS, *RESHARE_ERRORS),
        ),
        "/keyshare/v2/reshare/register": v2_auth(
            "Receive shares during a reshare (creates the user if missing)",
            _v2_body(WALLET_SHARES),
            ok_response(),
            V2_REGISTER_ERRORS,
        ),
        "/pg_dump/v1/backup": post(
            "Take a verified backup now (admin password; 5/min)",
            obj({"password": {"type": "string"}}, ["password"]),
            ok_response(
                obj(
                    {
                        "dumpId": {"type": "string"},
                        "dumpPath": {"type": "string"},
                        "dumpSize": {"type": "integer"},
                        "dumpDuration": {"type": "number"},
                    }
                )
            ),
            (
                "UNAUTHORIZED",
                "ADMIN_DISABLED",
                "PG_DUMP_FAILED",
                "BACKUP_TIMEOUT",
                "BACKUP_WORKER_DOWN",
            ),
            auth=False,
            tag=admin,
        ),
        "/pg_dump/v1/restore": post(
            "Restore a dump file from DUMP_DIR (admin password; 3/min)",
            obj(
                {"password": {"type": "string"}, "dump_path": {"type": "string"}},
                ["password", "dump_path"],
            ),
            ok_response(obj({"dump_path": {"type": "string"}})),
            (
                "UNAUTHORIZED",
                "ADMIN_DISABLED",
                "INVALID_DUMP_PATH",
                "DUMP_FILE_NOT_FOUND",
                "INVALID_DUMP_FILE",
                "DUMP_FILE_ACCESS_ERROR",
                "PG_RESTORE_FAILED",
                "BACKUP_TIMEOUT",
                "BACKUP_BUSY",
                "BACKUP_WORKER_DOWN",
            ),
            auth=False,
            tag=admin,
        ),
        "/pg_dump/v1/get_backup_history": post(
            "Backup records, newest first (5/min). meta carries the reference's keys"
            " (dump_size, dump_duration, error); sha256, verified, tables, node_id and reason"
            " only with the admin password in the body or the operator token",
            obj(
                {
                    "days": {
                        "type": "number",
                        "minimum": 1,
                        "maximum": 1000,
                        "description": "only the last N days; absent: all",
                    },
                    "password": {
                        "type": "string",
                        "description": "ADMIN_PASSWORD: the full meta; a wrong one is ignored",
                    },
                }
            ),
            ok_response({"type": "array", "items": DUMP_ROW}),
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
        "tags": [{"name": TAG, "description": "spec commit-reveal: commit, then reveal"}],
        "paths": add_commit_reveal(_paths()),
        "components": {
            "securitySchemes": {
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "Google/Auth0 ID token, X/Discord access token, or the Telegram "
                    "login payload as JSON; the provider is the body's auth_type",
                },
                "ops": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "OPS_TOKEN, the operator's token: /health and /metrics in"
                    " full, the backup history's full meta",
                },
            },
            "schemas": {"Error": ERROR, "Status": STATUS, "Health": HEALTH},
        },
    }
