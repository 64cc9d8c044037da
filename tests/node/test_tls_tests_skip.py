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
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider", TEST],
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
