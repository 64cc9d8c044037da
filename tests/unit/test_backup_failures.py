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


def test_an_unwritable_dump_dir_is_a_failed_backup_with_its_reason_then_backs_off(
    config, db, tmp_path
):
    """DUMP_DIR that takes no file (here: a file stands where its parent
    folder should be; a read-only mount is the same to the code): a FAILED
    row naming the cause, retried after BACKUP_RETRY_MIN_SECONDS. Before, the
    OSError escaped the attempt: each poll (every second) wrote a FAILED
    'interrupted' row, which the back-off does not count, and a traceback."""
    from dataclasses import replace

    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    with db.cursor() as cur:  # this module's earlier backups must not make it not due
        cur.execute('DELETE FROM "2_pg_dumps"')
    service = BackupService(
        replace(config, dump_dir=blocker / "dump", backup_retry_min_seconds=60.0), db, REAL_TOOLS
    )
    with pytest.raises(DumpFailed, match="cannot write the dump: .*Not a directory"):
        service.backup_if_due()
    assert service.backup_if_due() is None  # backing off, not trying again at once
    with db.cursor() as cur:
        cur.execute("SELECT status, meta->>'error' FROM \"2_pg_dumps\"")
        rows = cur.fetchall()
    assert len(rows) == 1 and rows[0][0] == "FAILED", rows
    assert "Not a directory" in rows[0][1], rows
