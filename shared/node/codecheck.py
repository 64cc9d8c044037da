"""Will the code on disk start? Asked before a reload replaces running code.

A reload (shared/node/reload.py, services/api/server/handover.py) swaps the code of
running programs for what is on disk now. If that code cannot even import
(a half-copied upgrade, a missing dependency, a new setting left unset), the
swap would take a serving program down. This check runs the steps every
program takes first (import its modules, read the settings, read the secret
files) in a fresh interpreter, so nothing cached in the caller hides a
broken file:

    python -m shared.node.codecheck api backup_worker reporter

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
import time
from collections.abc import Callable, Sequence

from shared.infra.errortext import first_line
from shared.infra.version import PROJECT_ROOT

ENTRY_MODULES = {
    "api": "services.api.server.program",
    "backup_worker": "services.backup_worker.main",
    "reporter": "services.reporter.main",
}
CHECK_SECONDS = 60.0
CHECKS_FAILED = 3


def check_here(programs: Sequence[str]) -> list[str]:
    """Run the checks in this interpreter; one ``program: reason`` per failure."""
    from shared.config import load_config
    from shared.crypto.secretfiles import load_cipher

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
    programs: Sequence[str],
    env: dict[str, str] | None = None,
    python: str | None = None,
    cancel: Callable[[], bool] = lambda: False,
) -> str | None:
    """None when ``programs`` would start from the code on disk, else why not
    (one line per failure, joined by "; "). ``cancel()`` is asked every
    0.1 s: True stops the check (the api's parent asked to stop meanwhile)."""
    unknown = [name for name in programs if name not in ENTRY_MODULES]
    if unknown:
        raise ValueError(f"unknown programs: {unknown}")
    try:
        check = subprocess.Popen(
            [python or sys.executable, "-m", "shared.node.codecheck", *programs],
            # Where the programs run (supervisord.conf's folder), not the
            # operator's: `python -m` imports from its current folder first,
            # and `ksnode reload` may run where others can write.
            cwd=PROJECT_ROOT,
            env=os.environ.copy() if env is None else env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            text=True,
        )
    except OSError as exc:
        return f"cannot run the code check: {first_line(exc)}"
    deadline = time.monotonic() + CHECK_SECONDS
    while True:
        try:
            _, stderr = check.communicate(timeout=0.1)
            break
        except subprocess.TimeoutExpired:
            if cancel() or time.monotonic() > deadline:
                check.kill()
                check.communicate()
                return (
                    "the code check was stopped"
                    if cancel()
                    else (f"the code check did not finish in {CHECK_SECONDS:.0f} s")
                )
    if check.returncode == 0:
        return None
    lines = [line for line in stderr.splitlines() if line.strip()]
    if check.returncode == CHECKS_FAILED and lines:
        return "; ".join(lines)
    # The check itself could not run (e.g. shared/ is the broken part).
    return (lines[-1] if lines else f"exit status {check.returncode}")[:300]


def main(argv: list[str] | None = None) -> int:
    programs = sys.argv[1:] if argv is None else argv
    unknown = [name for name in programs if name not in ENTRY_MODULES]
    if unknown or not programs:
        print(f"usage: python -m shared.node.codecheck {' '.join(ENTRY_MODULES)}", file=sys.stderr)
        return 2
    failures = check_here(programs)
    for failure in failures:
        print(failure, file=sys.stderr)
    return CHECKS_FAILED if failures else 0


if __name__ == "__main__":
    sys.exit(main())
