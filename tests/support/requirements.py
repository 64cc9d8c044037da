"""A tool or server a test needs and the machine lacks: the test skips with
a reason that says how to get it, unless ``.ci/run`` set the variable that
makes it required, where the skip would hide a broken CI set-up."""

from __future__ import annotations

import os
from typing import NoReturn

import pytest


def unavailable(reason: str, required_by: str) -> NoReturn:
    """Skip with ``reason``; fail instead when ``required_by`` is set to 1."""
    if os.environ.get(required_by) == "1":
        pytest.fail(f"{reason} [{required_by}=1]")
    pytest.skip(reason)
