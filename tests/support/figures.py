"""Figures a test reports (request counts, build times) for the end of the
run: captured output is hidden, and under pytest-xdist a worker's own
stdout is not shown at all. The controller (or a serial run) names a file in
KSNODE_TEST_FIGURES before its workers start; every process appends to it,
and the controller prints it in the terminal summary (tests/conftest.py)."""

from __future__ import annotations

import os
import tempfile

FIGURES_ENV = "KSNODE_TEST_FIGURES"


def open_figures() -> str | None:
    """Name a fresh figures file for this run, unless an outer run did
    (a worker, or a pytest run started by a test): then None."""
    if os.environ.get(FIGURES_ENV):
        return None
    fd, path = tempfile.mkstemp(prefix="ksnode-test-figures-", suffix=".txt")
    os.close(fd)
    os.environ[FIGURES_ENV] = path
    return path


def report_figure(line: str) -> None:
    """One line for the end of the run (one write in append mode: lines of
    parallel workers do not interleave)."""
    path = os.environ.get(FIGURES_ENV)
    if not path:
        print("\n" + line, flush=True)
        return
    with open(path, "a", encoding="utf-8") as handle:
        handle.write(line.replace("\n", " ") + "\n")


def take_figures(path: str) -> list[str]:
    """The lines reported during the run; the file is removed."""
    try:
        with open(path, encoding="utf-8") as handle:
            lines = handle.read().splitlines()
    except FileNotFoundError:
        return []
    os.unlink(path)
    return lines
