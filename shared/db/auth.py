"""Password authentication of the embedded Postgres.

The server admits only clients that know a generated password, kept in
``<home>/pg_password`` (0600, owned by the programs' account). No
``trust`` line is ever written: any local account could otherwise connect
over 127.0.0.1 as the superuser. The password is handed to the server as a
SCRAM verifier (never in clear text, so no server log can show it) and to
the programs as a file (``DB_PASSWORD_FILE``), never on a command line.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
from pathlib import Path

PASSWORD_FILE = "pg_password"
SCRAM_ITERATIONS = 4096

HBA = (
    "# Written by ksnode: every connection needs the password in pg_password\n"
    "# (scram-sha-256); no trust line, no other address than loopback.\n"
    "local   all   all                  scram-sha-256\n"
    "host    all   all   127.0.0.1/32   scram-sha-256\n"
)


def scram_verifier(password: str, salt: bytes | None = None) -> str:
    """What Postgres stores for ``password`` (RFC 5802/7677 as Postgres
    writes it). ``password`` is ASCII, so SASLprep leaves it unchanged."""
    salt = salt or os.urandom(16)
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, SCRAM_ITERATIONS)
    client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
    stored_key = hashlib.sha256(client_key).digest()
    server_key = hmac.new(salted, b"Server Key", hashlib.sha256).digest()

    def b64(data: bytes) -> str:
        return base64.b64encode(data).decode()

    return f"SCRAM-SHA-256${SCRAM_ITERATIONS}:{b64(salt)}${b64(stored_key)}:{b64(server_key)}"


def read_password(path: Path) -> str | None:
    try:
        text = path.read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError):
        return None
    return text or None


def write_password(path: Path, owner: tuple[int, int] | None) -> str:
    """A new random password in ``path``, 0600 from its creation."""
    password = secrets.token_urlsafe(32)
    path.unlink(missing_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        if owner is not None:
            os.fchown(fd, *owner)
        os.write(fd, (password + "\n").encode())
    finally:
        os.close(fd)
    return password


def allows_trust(hba_text: str) -> bool:
    """Whether a pg_hba.conf admits anyone without a password (an earlier
    version's ``initdb --auth=trust``)."""
    for line in hba_text.splitlines():
        words = line.split("#", 1)[0].split()
        if "trust" in words:
            return True
    return False
