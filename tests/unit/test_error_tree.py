"""Every exception class the project defines hangs under ``KsnodeError``
(shared/errors.py), through one of its branches, so one ``except`` in
``ksnode`` (shared/cli/__init__.py) and one exit-code table cover them all."""

from __future__ import annotations

import importlib
import inspect
from pathlib import Path

from shared.config import ConfigError
from shared.errors import (
    ConfigurationFailure,
    CryptoFailure,
    KsnodeError,
    NodeFailure,
    UsageFailure,
)
from shared.exitcodes import BRANCH_CODES, ExitCode, exit_code_for

ROOT = Path(__file__).resolve().parents[2]
BRANCHES = {
    cls
    for cls in vars(importlib.import_module("shared.errors")).values()
    if inspect.isclass(cls) and issubclass(cls, KsnodeError) and cls is not KsnodeError
}


def _project_modules() -> list[str]:
    names = []
    for package in ("shared", "services"):
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__main__":  # runs the program when imported
                continue
            if parts[-1] == "__init__":
                parts.pop()
            names.append(".".join(parts))
    return names


def _project_exceptions() -> list[type[BaseException]]:
    found = []
    for name in _project_modules():
        module = importlib.import_module(name)
        for value in vars(module).values():
            if (
                inspect.isclass(value)
                and issubclass(value, BaseException)
                and value.__module__ == name
            ):
                found.append(value)
    return found


def test_every_project_exception_derives_from_the_root():
    exceptions = _project_exceptions()
    # The walk really finds the project's exceptions (about 40 today).
    assert len(exceptions) > 30
    strays = [
        f"{cls.__module__}.{cls.__qualname__}"
        for cls in exceptions
        if not issubclass(cls, KsnodeError)
    ]
    assert strays == []


def test_every_project_exception_is_under_a_branch():
    loose = [
        f"{cls.__module__}.{cls.__qualname__}"
        for cls in _project_exceptions()
        if cls is not KsnodeError
        and cls not in BRANCHES
        and not any(issubclass(cls, branch) for branch in BRANCHES)
    ]
    assert loose == []


def test_every_branch_has_an_exit_code():
    assert BRANCHES <= set(BRANCH_CODES)


def test_exit_codes_keep_what_the_docs_promise():
    # tests/node/test_config.py and docs/operator.md: a bad setting exits 2,
    # a command that fails or refuses exits 1, Ctrl-C 130.
    assert exit_code_for(ConfigError(["PORT: not a number"])) == ExitCode.CONFIG == 2
    assert exit_code_for(UsageFailure("no such path")) == ExitCode.USAGE == 2
    assert exit_code_for(NodeFailure("cannot start")) == ExitCode.FAILED == 1
    assert exit_code_for(CryptoFailure("no key")) == ExitCode.FAILED
    assert ExitCode.INTERRUPTED == 130
    assert issubclass(ConfigError, ConfigurationFailure)


def test_refusals_are_marked():
    from shared.keys.keycheck import KeyCheckFailed
    from shared.node.launcher import LaunchError

    assert KeyCheckFailed("3 key shares").refusal is True
    assert LaunchError("pg_ctl failed").refusal is False
