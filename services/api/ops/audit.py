"""The API's audit hook: one record per call of an audited route.

An ``after_request`` function sees every answer of the routes named in
``EVENTS`` — served, refused by a check, rate limited or failed — and
records it from what the request left behind: the route, the status and
error code, ``g.identity`` (set by ``authenticate()``), the public keys of
the parsed body and the client address. Admin and write events are
committed before the response leaves (the function runs before Flask hands
the response to the server); reads, checks and refused writes are batched
(shared/audit/trail.py). Only chosen fields are copied: a body's share,
a token or a password has no way in.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import logging
import re
from dataclasses import dataclass
from typing import Any, NamedTuple

from flask import Flask, Response, g, request

from services.api.auth.bearer import Identity
from services.api.server.gate import inside_gate, outside_gate
from services.api.web.context import NodeContext
from services.api.web.ratelimit import forwarded_address
from shared.audit.records import AuditKey, Record, utc_now
from shared.audit.trail import AuditTrail, node_key

log = logging.getLogger("audit")


@dataclass(frozen=True)
class Event:
    name: str
    durable: bool  # committed before the answer (admin calls; writes that succeeded)
    check: bool = False  # recorded only with AUDIT_CHECKS=true

    @property
    def admin(self) -> bool:
        return self.name.startswith("admin.")


EVENTS: dict[str, Event] = {
    "keyshare_v1.get_share": Event("keyshare.v1.get", False),
    "keyshare_v2.get_shares": Event("keyshare.v2.get", False),
    "keyshare_v1.check": Event("keyshare.v1.check", False, check=True),
    "keyshare_v2.check": Event("keyshare.v2.check", False, check=True),
    "keyshare_v1.register": Event("keyshare.v1.register", True),
    "keyshare_v2.register": Event("keyshare.v2.register", True),
    "keyshare_v2.register_ed25519": Event("keyshare.v2.register_ed25519", True),
    "keyshare_v2.reshare_register": Event("keyshare.v2.reshare_register", True),
    "keyshare_v1.reshare": Event("keyshare.v1.reshare", True),
    "keyshare_v2.reshare": Event("keyshare.v2.reshare", True),
    # a commit opens a session but moves no share: batched like a read (a
    # durable record would add a serialized chain write to every commit)
    "commit.commit": Event("keyshare.v2.commit", False),
    "pg_dump.backup": Event("admin.backup", True),
    "pg_dump.restore": Event("admin.restore", True),
    "pg_dump.get_backup_history": Event("admin.backup_history", True),
}
AUTH_TYPES = frozenset({"google", "auth0", "x", "discord", "telegram"})
CURVES = ("secp256k1", "ed25519")
# A compressed secp256k1 key (33 bytes) or an ed25519 key (32 bytes); a share
# (64 bytes and more) can never pass for one.
PUBLIC_KEY = re.compile(r"(?:0x)?([0-9a-fA-F]{64}|[0-9a-fA-F]{66})")
MAX_DETAIL = 200


class Seen(NamedTuple):
    """What a request leaves for its record: references, no work. Reads are
    turned into records by the trail's thread (``build_record``), in a batch,
    so a share read pays a few µs for its record in the request itself."""

    event: Event
    status: int
    answer: dict[str, Any] | None  # the error body, for an error
    body: dict[str, Any] | None
    identity: Identity | None
    request_id: str | None
    remote_addr: str | None
    forwarded: str | None  # X-Forwarded-For, read only with TRUST_PROXY_HOPS
    at: dt.datetime
    # commit-reveal: kind, session, operation, api (web/commit_reveal.note)
    cr: dict[str, str] | None = None


def install(app: Flask, ctx: NodeContext) -> AuditTrail | None:
    """Register the hook; the trail lives in ``ctx.extras["audit_trail"]``."""
    if not ctx.config.audit_enabled:
        return None
    hops, trusted = ctx.config.trust_proxy_hops, ctx.config.trusted_proxies
    trail = ctx.extras.get("audit_trail")
    if trail is None:
        key = node_key(ctx.config)
        trail = AuditTrail(
            ctx.db,
            key,
            retention_days=ctx.config.audit_retention_days,
            builder=lambda seen: build_record(seen, key, hops, trusted),
            cpu_section=inside_gate,
        )
        ctx.extras["audit_trail"] = trail
    # At once, not at the first record: records staged by a process that
    # died before sealing them (a killed worker) are sealed without waiting
    # for traffic.
    trail.start()
    checks = ctx.config.audit_checks

    def stage() -> tuple[Record, str] | None:
        event = EVENTS.get(request.endpoint or "")
        if event is None:
            return None
        record = build_record(capture(event, 200, None, hops), key, hops, trusted)
        return record, key.stage_mac(record)

    ctx.extras["audit_stage"] = stage

    @app.after_request
    def _audit(response: Response) -> Response:
        event = EVENTS.get(request.endpoint or "")
        if event is None or request.method == "OPTIONS" or (event.check and not checks):
            return response
        if g.get("audit_staged"):  # committed by the route's own statement
            return response
        try:
            status = response.status_code
            answer = response.get_json(silent=True) if status >= 400 else None
            seen = capture(event, status, answer if isinstance(answer, dict) else None, hops)
            # Every admin call, and every write that happened, is stored before
            # the answer; a refused write changed nothing and is batched like
            # a read (a flood of bad registrations must not queue on the chain).
            if event.durable and (seen.status < 400 or event.admin):
                record = trail.build(seen)
                with outside_gate():  # waiting on the database: let other requests run
                    trail.record(record, durable=True)
            else:
                trail.record(seen)
        except Exception:  # noqa: BLE001 - the answer stands; the failure is logged
            log.exception(
                "audit hook failed",
                extra={"event": "audit.hook_error", "request_id": g.get("request_id")},
            )
        return response

    return trail


def close(ctx: NodeContext) -> None:
    """Commit queued records (the API worker calls it when it stops)."""
    trail = ctx.extras.get("audit_trail")
    if trail is not None:
        trail.close()


def staged_record(ctx: NodeContext) -> tuple[Record, str] | None:
    """This request's record as if it succeeded, and the node's MAC over it
    (AuditKey.stage_mac), for a route that writes the record in its own
    statement (ksn_audit_staged: it then commits with the write or not at
    all); None with the trail off. Once that statement has committed, the
    route calls ``staged()`` so the hook does not record the request again;
    if it did not commit, the hook records the outcome as usual."""
    stage = ctx.extras.get("audit_stage")
    return stage() if stage is not None else None


def staged() -> None:
    g.audit_staged = True


def capture(event: Event, status: int, answer: dict[str, Any] | None, hops: int) -> Seen:
    # Each lookup through flask.g or flask.request costs about 1 µs: once each.
    # flask types ``request`` as a Request, but it is the LocalProxy in front
    # of one (flask/globals.py), which has this method.
    scope, req = g._get_current_object(), request._get_current_object()  # type: ignore[attr-defined]
    return Seen(
        event,
        status,
        answer,
        getattr(scope, "_json_body", None),
        getattr(scope, "identity", None),
        getattr(scope, "request_id", None),
        req.remote_addr,
        req.headers.get("X-Forwarded-For") if hops else None,
        utc_now(),
        getattr(scope, "cr_audit", None),
    )


def build_record(seen: Seen, key: AuditKey, hops: int, trusted: tuple[str, ...]) -> Record:
    event, status, answer, identity = seen.event, seen.status, seen.answer, seen.identity
    body = seen.body or {}
    outcome, reason = "ok", None
    if status >= 400:
        outcome = str((answer or {}).get("code") or status)[:64]
        msg = (answer or {}).get("msg")
        reason = msg if isinstance(msg, str) else None
    # The status only when it says more than "ok" does.
    detail: dict[str, Any] = {} if status == 200 else {"status": status}
    if seen.cr:
        # Session id and operation only: never the token, hash or signature.
        detail["commit_reveal"] = {k: _text(v) for k, v in seen.cr.items()}
    if event.admin:
        auth_type = "admin"
        if reason:  # admin messages name no user: say why it was refused
            detail["reason"] = _text(reason)
        if event.name == "admin.restore" and isinstance(body.get("dump_path"), str):
            detail["dump_path"] = _text(body["dump_path"])
    elif identity is not None:
        auth_type = identity.auth_type
    else:
        raw = body.get("auth_type", "google")
        # Any JSON value may come here: a list or an object is not hashable.
        auth_type = raw if isinstance(raw, str) and raw in AUTH_TYPES else "invalid"
    user_auth_id = identity.user_auth_id if identity is not None else None
    if user_auth_id is None and event.check and isinstance(body.get("user_auth_id"), str):
        user_auth_id = body["user_auth_id"]  # /check names the user it asks about
    return Record(
        event=event.name,
        outcome=outcome,
        at=seen.at,
        request_id=seen.request_id,
        client=client_address(seen.remote_addr, seen.forwarded, hops, trusted),
        auth_type=auth_type,
        user_ref=key.user_ref(user_auth_id),
        public_keys=public_keys(body, event.name.endswith("ed25519")),
        detail=detail or None,
    )


def _text(value: str) -> str:
    """A client-supplied string, bounded and storable (Postgres text and
    jsonb refuse NUL and lone surrogates)."""
    text = value[:MAX_DETAIL].replace("\x00", "\ufffd")
    return text.encode("utf-8", "replace").decode("utf-8")


def public_keys(body: dict[str, Any], ed25519_route: bool = False) -> tuple[str, ...]:
    """``curve:hex`` of each public key in a v1 or v2 body; malformed ones as
    ``curve:invalid`` (never their content)."""
    found: list[str] = []
    if "public_key" in body:
        ed = ed25519_route or body.get("curve_type") == "ed25519"
        curve = "ed25519" if ed else "secp256k1"
        found.append(_key(curve, body.get("public_key")))
    wallets = body.get("wallets")
    if isinstance(wallets, dict):
        for curve in CURVES:
            value = wallets.get(curve)
            if isinstance(value, dict):
                value = value.get("public_key")
            if value is not None:
                found.append(_key(curve, value))
    return tuple(found)


def _key(curve: str, value: Any) -> str:
    match = PUBLIC_KEY.fullmatch(value) if isinstance(value, str) else None
    return f"{curve}:{match.group(1).lower()}" if match else f"{curve}:invalid"


def client_address(
    remote_addr: str | None, forwarded: str | None, hops: int, trusted: tuple[str, ...]
) -> str:
    """The client's address as the rate limiter sees it (ratelimit.client_key:
    TRUST_PROXY_HOPS from the right of X-Forwarded-For, from TRUSTED_PROXIES
    only), but exact: IPv6 addresses are not grouped by /56 here."""
    address = forwarded_address(remote_addr, forwarded, hops, trusted)
    if hops == 0:  # the socket's peer: always an address, no need to parse it
        return address[7:] if address.startswith("::ffff:") and "." in address else address
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return "invalid" if address != "unknown" else address  # a forged header, not an address
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return str(ip.ipv4_mapped)
    return str(ip)
