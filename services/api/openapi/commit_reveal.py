"""The OpenAPI parts of commit-reveal (spec commit-reveal §8): the commit
route, and the ``cr_*`` fields and answers of the five protected v2 routes.

In ``optional`` mode (the default) the fields are optional: a request
without them is served as before unless its token is committed here."""

from __future__ import annotations

import copy
from typing import Any

from services.api.openapi.schemas import HEX64, obj, ok_response, post

TAG = "Commit-Reveal"
OPERATION_TYPES = ["sign_in", "sign_up", "sign_in_reshare", "register_reshare", "add_ed25519"]
PROTECTED = (
    "/keyshare/v2",
    "/keyshare/v2/register",
    "/keyshare/v2/register/ed25519",
    "/keyshare/v2/reshare",
    "/keyshare/v2/reshare/register",
)
HEX32 = {"type": "string", "pattern": "^[0-9a-fA-F]{64}$", "description": "32 bytes, hex"}
CR_FIELDS = {
    "cr_session_id": {
        "type": "string",
        "format": "uuid",
        "description": "the session_id committed at this node",
    },
    "cr_signature": {
        "type": "string",
        "pattern": "^[0-9a-fA-F]{128}$",
        "description": "Ed25519 signature by the committed ephemeral key over SHA-256 of"
        " node_pubkey ‖ cr_session_id ‖ auth_type ‖ token ‖ operation_type ‖ api_name",
    },
}
REVEAL_ERRORS = (
    "INVALID_REQUEST",
    "INVALID_SIGNATURE",
    "SESSION_NOT_FOUND",
    "SESSION_EXPIRED",
    "API_ALREADY_CALLED",
    "UNAUTHORIZED",
)
NOTE = (
    " Requires commit-reveal authentication (cr_session_id, cr_signature) with"
    " COMMIT_REVEAL=required; optional otherwise, but a token committed at this node"
    " is only served with them."
)


def commit_path() -> dict[str, Any]:
    body = obj(
        {
            "session_id": {"type": "string", "format": "uuid"},
            "operation_type": {"type": "string", "enum": OPERATION_TYPES},
            "client_ephemeral_pubkey": {**HEX32, "description": "32-byte Ed25519 public key"},
            "id_token_hash": {**HEX32, "description": "SHA-256 of auth_type ‖ token"},
        },
        ["session_id", "operation_type", "client_ephemeral_pubkey", "id_token_hash"],
    )
    data = obj(
        {
            "node_pubkey": {**HEX64, "description": "the node's server public key"},
            "node_signature": {
                "type": "string",
                "pattern": "^[0-9a-f]{128}$",
                "description": "Ed25519 over SHA-256 of node_pubkey's hex text",
            },
        },
        ["node_pubkey", "node_signature"],
    )
    return post(
        "Commit a token hash and an ephemeral key before revealing the token",
        body,
        ok_response(data),
        ("INVALID_REQUEST", "SESSION_ALREADY_EXISTS", "UNKNOWN_ERROR"),
        auth=False,
        tag=TAG,
    )


def add_commit_reveal(paths: dict[str, Any]) -> dict[str, Any]:
    """The commit routes, and the reveal fields and answers of the protected routes."""
    out = dict(paths)
    for path in PROTECTED:
        item = copy.deepcopy(out[path])
        operation = item["post"]
        operation["tags"] = [TAG, *operation["tags"]]
        operation["description"] = operation.get("description", "") + NOTE
        schema = operation["requestBody"]["content"]["application/json"]["schema"]
        schema["properties"] = {**schema["properties"], **CR_FIELDS}
        extra = post("", obj({}), ok_response(), REVEAL_ERRORS, auth=True, tag=TAG)
        for status, answer in extra["post"]["responses"].items():
            if status == "200":
                continue
            mine = operation["responses"].setdefault(status, answer)
            if mine is not answer:
                codes = mine["description"].split(", ") if mine["description"] else []
                for code in answer["description"].split(", "):
                    if code not in codes:
                        codes.append(code)
                mine["description"] = ", ".join(codes)
        out[path] = item
    out["/keyshare/v2/commit"] = commit_path()
    alias = commit_path()
    alias["post"]["summary"] += " (the same route, at an upstream branch's path)"
    out["/commit-reveal/v2/commit"] = alias
    return out
