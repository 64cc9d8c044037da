"""Which files may be restored: regular files inside DUMP_DIR only (symlinks
resolved, ``..`` rejected). Shared by the API (early, precise errors) and the
backup worker (checked again before it acts)."""

from __future__ import annotations

from pathlib import Path

MAGIC = b"PGDMP"


class UnsafeDumpPath(Exception):
    """Refused restore path; ``code`` is the API error code."""

    def __init__(self, code: str, msg: str):
        super().__init__(msg)
        self.code = code
        self.msg = msg


def resolve_dump_path(raw: str, dump_dir: Path) -> Path:
    """The real path of the file to restore, or UnsafeDumpPath (design §11 order:
    exists, is a regular file, is inside DUMP_DIR, looks like a dump)."""
    path = Path(raw)
    if not path.is_absolute():
        path = dump_dir / path
    try:
        exists = path.exists()
    except (OSError, ValueError):
        exists = False
    if not exists:
        raise UnsafeDumpPath("DUMP_FILE_NOT_FOUND", f"Dump file not found at path: {raw}")
    if not path.is_file():
        raise UnsafeDumpPath("INVALID_DUMP_FILE", f"Path is not a file: {raw}")
    real = path.resolve()
    root = Path(dump_dir).resolve()
    if ".." in Path(raw).parts or root not in real.parents:
        raise UnsafeDumpPath(
            "INVALID_DUMP_PATH", f"Dump file must be inside the dump directory ({dump_dir})"
        )
    try:
        with real.open("rb") as handle:
            head = handle.read(len(MAGIC))
    except OSError as exc:
        raise UnsafeDumpPath(
            "DUMP_FILE_ACCESS_ERROR", f"Cannot access dump file: {raw} ({exc.strerror})"
        ) from None
    if head != MAGIC:
        raise UnsafeDumpPath("INVALID_DUMP_FILE", f"Not a pg_dump archive: {raw}")
    return real
