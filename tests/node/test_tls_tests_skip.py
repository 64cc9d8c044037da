"""The TLS tests need a PostgreSQL built with TLS. Without one they skip
with a reason that says how to get one; with KSNODE_REQUIRE_TLS_TESTS=1
(.ci/run) the same situation is a failure, so CI cannot pass without them."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TEST = "tests/node/test_external_db_tls.py::test_db_ssl_true_connects_encrypted"


def run_tls_test(tmp_path: Path, **extra: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "KSNODE_REQUIRE_TLS_TESTS"}
    env["KSNODE_TEST_SYSTEM_PG_ROOT"] = str(tmp_path / "no-postgres-here")
    env.update(extra)
    # Its own --basetemp: without one, pytest resets /tmp/pytest-of-<user> to
    # 0700, which locks the embedded Postgres servers that other test workers
    # run below it (as their own account) out of their folders. One test: no
    # worker processes (-n 0).
    inner = [sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider", "-n", "0"]
    return subprocess.run(
        [*inner, "--basetemp", str(tmp_path / "inner"), TEST],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_without_a_tls_postgres_the_tls_tests_skip_with_a_reason(tmp_path):
    result = run_tls_test(tmp_path)
    assert result.returncode == 0, result.stdout
    assert "1 skipped" in result.stdout
    assert "no TLS-capable PostgreSQL server" in result.stdout
    assert "apt-get install postgresql" in result.stdout


def test_ci_turns_that_skip_into_a_failure(tmp_path):
    result = run_tls_test(tmp_path, KSNODE_REQUIRE_TLS_TESTS="1")
    assert result.returncode == 1, result.stdout
    assert "no TLS-capable PostgreSQL server" in result.stdout
