"""Byte counts as people read them (progress lines, `ksnode backup` and
`ksnode history`)."""

from __future__ import annotations


def human_size(n: float) -> str:
    """``n`` bytes in B, KiB, MiB or GiB: ``512 B``, ``1.5 MiB``."""
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)
