"""A pg_dump that fails or writes a broken file is FAILED, never COMPLETED,
and leaves no file (spec §13 W2)."""

import pytest

from shared.backup.errors import DumpFailed, VerifyFailed
from shared.backup.pgtools import PgTools
from shared.backup.service import BackupService
from tests.support.backup_helpers import REAL_TOOLS, fake_pg_dump

CASES = {
    "exit_1": (
        'echo "pg_dump: error: connection refused" >&2; : > "$OUT"; exit 1',
        DumpFailed,
        "connection refused",
    ),
    "truncated": ('printf "PGDMP\\x01\\x0e" > "$OUT"; exit 0', VerifyFailed, "pg_restore"),
    "not_a_dump": ('echo "hello" > "$OUT"; exit 0', VerifyFailed, "PGDMP"),
    "empty": (': > "$OUT"; exit 0', DumpFailed, "no data"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_failed_dump_is_recorded_failed_and_leaves_nothing(case, config, db, dump_dir, tmp_path):
    from dataclasses import replace

    body, error, fragment = CASES[case]
    tools = PgTools(fake_pg_dump(tmp_path, body), REAL_TOOLS.pg_restore, 18)
    service = BackupService(replace(config, dump_dir=dump_dir), db, tools)
    with pytest.raises(error, match=fragment):
        service.backup_now()
    assert list(dump_dir.iterdir()) == []
    with db.cursor() as cur:
        cur.execute(
            'SELECT status, dump_path, meta FROM "2_pg_dumps" ORDER BY created_at DESC LIMIT 1'
        )
        status, path, meta = cur.fetchone()
    assert status == "FAILED" and path is None and fragment in meta["error"]


def test_real_truncated_archive_fails_verification(service, dump_dir, tmp_path):
    good = service.backup_now()
    data = open(good["dumpPath"], "rb").read()
    broken = tmp_path / "broken.dump"
    broken.write_bytes(data[: len(data) // 2])
    from shared.backup.dump import verify

    with pytest.raises(VerifyFailed):
        verify(service.tools, broken, {})


def test_worker_refuses_an_older_client(config, tmp_path):
    from dataclasses import replace

    from shared.backup.errors import ToolsUnusable
    from shared.backup.pgtools import find_tools

    old = tmp_path / "old_pg_dump"
    old.write_text('#!/bin/sh\necho "pg_dump (PostgreSQL) 12.1"\n')
    old.chmod(0o755)
    with pytest.raises(ToolsUnusable, match="older than the server"):
        find_tools(replace(config, pg_dump_bin=str(old), pg_restore_bin=str(old)), 18)
