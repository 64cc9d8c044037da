"""What a request handler can reach: settings, pool, cipher, node identity."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from flask import current_app

from shared.config import Config
from shared.crypto.sealing import Cipher
from shared.db.pool import Database
from shared.keys.keypair import ServerKeypair


@dataclass
class NodeContext:
    config: Config
    db: Database
    cipher: Cipher
    keypair: ServerKeypair | None
    launch_time: dt.datetime
    git_hash: str | None
    version: str
    # Filled by create_app: the auth verifier, rate limiter, metrics, ...
    extras: dict[str, Any] = field(default_factory=dict)


def node() -> NodeContext:
    return current_app.extensions["ksnode"]
