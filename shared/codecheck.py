"""Will the code on disk start? Asked before a reload replaces running code.

A reload (shared/reload.py, services/api/handover.py) swaps the code of
running programs for what is on disk now. If that code cannot even import
(a half-copied upgrade, a missing dependency, a new setting left unset), the
swap would take a serving program down. This check runs the steps every
program takes first (import its modules, read the settings, read the secret
files) in a fresh interpreter, so nothing cached in the caller hides a
broken file:

    python -m shared.codecheck api backup_worker reporter

It prints nothing and exits 0 when they all pass; otherwise it prints one
line per failing program (``<program>: <reason>``) and exits 3 (1 is
Python's own exit on an uncaught exception, e.g. when shared/ itself is
what is broken).
"""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
from collections.abc import Sequence

from shared.errortext import first_line

ENTRY_MODULES = {
    "api": "services.api.server",
    "backup_worker": "services.backup_worker.main",
    "reporter": "services.reporter.main",
}
CHECK_SECONDS = 60.0
CHECKS_FAILED = 3


def check_here(programs: Sequence[str]) -> list[str]:
    """Run the checks in this interpreter; one ``program: reason`` per failure."""
    from shared.config import load_config
    from shared.secretfiles import load_cipher

    failures = []
    for program in programs:
        try:
            importlib.import_module(ENTRY_MODULES[program])
        except Exception as exc:  # noqa: BLE001 - any import failure is the answer
            failures.append(f"{program}: {type(exc).__name__}: {first_line(exc, 300)}")
    try:
        config = load_config()
        load_cipher(config.effective_secret_path, config.encryption_secret_previous_paths)
    except Exception as exc:  # noqa: BLE001 - ConfigError, SecretError, ...
        # A ConfigError lists every bad setting on its own line: keep them all.
        failures.append(f"settings: {' '.join(str(exc).split())[:500]}")
    return failures


def check_code(
    programs: Sequence[str], env: dict[str, str] | None = None, python: str | None = None
) -> str | None:
    """None when ``programs`` would start from the code on disk, else why not
    (one line per failure, joined by "; ")."""
    unknown = [name for name in programs if name not in ENTRY_MODULES]
    if unknown:
        raise ValueError(f"unknown programs: {unknown}")
    try:
        result = subprocess.run(
            [python or sys.executable, "-m", "shared.codecheck", *programs],
            env=os.environ.copy() if env is None else env,
            capture_output=True,
            text=True,
            timeout=CHECK_SECONDS,
            stdin=subprocess.DEVNULL,
        )
    except subprocess.TimeoutExpired:
        return f"the code check did not finish in {CHECK_SECONDS:.0f} s"
    except OSError as exc:
        return f"cannot run the code check: {first_line(exc)}"
    if result.returncode == 0:
        return None
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    if result.returncode == CHECKS_FAILED and lines:
        return "; ".join(lines)
    # The check itself could not run (e.g. shared/ is the broken part).
    return (lines[-1] if lines else f"exit status {result.returncode}")[:300]


def main(argv: list[str] | None = None) -> int:
    programs = sys.argv[1:] if argv is None else argv
    unknown = [name for name in programs if name not in ENTRY_MODULES]
    if unknown or not programs:
        print(f"usage: python -m shared.codecheck {' '.join(ENTRY_MODULES)}", file=sys.stderr)
        return 2
    failures = check_here(programs)
    for failure in failures:
        print(failure, file=sys.stderr)
    return CHECKS_FAILED if failures else 0


if __name__ == "__main__":
    sys.exit(main())
