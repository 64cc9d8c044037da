"""The encryption secret files: read verbatim, created for development.

The secret never leaves this module's return values: errors name the file,
never its content.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path

from shared.crypto.sealing import Cipher, SecretError

log = logging.getLogger(__name__)


def load_cipher(current: Path, previous: Sequence[Path] = ()) -> Cipher:
    """The node's cipher from its secret files (current first)."""
    return Cipher(load_secret(current), [load_secret(path) for path in previous])


def load_secret(path: Path) -> str:
    """Read the secret file verbatim (spec §8.2: no trimming, a trailing
    newline is part of the secret)."""
    try:
        data = Path(path).expanduser().read_bytes()
    except OSError as exc:
        raise SecretError(f"Failed to load encryption secret: {exc.strerror} ({path})") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        # The reference reads the file with fs.readFileSync(path, "utf8"),
        # which turns each invalid sequence into U+FFFD (the same maximal
        # subparts Python's "replace" takes): its database was encrypted
        # under that text, so it is ours too. The bytes made into U+FFFD no
        # longer count, so the secret is weaker than the file: say so.
        text = data.decode("utf-8", "replace")
        log.warning(
            "the encryption secret file is not UTF-8 text: read as the reference node "
            "reads it (each invalid byte sequence as U+FFFD), which makes it weaker than "
            "its bytes; rotate to a new secret of hex or other text (operator guide "
            "section 14)",
            extra={"event": "secret.not_utf8", "path": str(path)},
        )
    if text == "":
        raise SecretError(f"Encryption secret is empty ({path})")
    return text


def create_dev_secret(path: Path) -> bool:
    """Create a random secret file with mode 0600 unless one exists.
    Returns True when a file was created."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return False
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(os.urandom(32).hex())
    return True
