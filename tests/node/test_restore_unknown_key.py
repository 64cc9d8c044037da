"""A restore of a dump whose server keypair is sealed under a secret this
node does not have (a backup from before a secret rotation whose old secret
was removed since) is refused before anything changes: restored, the node
served on but refused every later start. With that secret configured again
as a previous one, the same dump restores. Real pg_dump/pg_restore."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from shared.backup.errors import RestoreFailed
from shared.backup.service import BackupService
from shared.crypto.sealing import Cipher
from tests.support.backup_helpers import REAL_TOOLS

OTHER_SECRET = "a-secret-this-node-was-never-given"


def keypair_count(db) -> int:
    with db.cursor() as cur:
        cur.execute('SELECT count(*) FROM "2_server_keypairs"')
        return cur.fetchone()[0]


def test_a_dump_under_an_unknown_secret_is_refused_until_it_is_configured(
    service, db, dump_dir, tmp_path
):
    other = Cipher(OTHER_SECRET)
    with db.transaction() as cur:
        cur.execute(
            'INSERT INTO "2_server_keypairs" (public_key, enc_private_key, is_active)'
            " VALUES (%s, %s, false)",
            (b"\x02" * 32, f"ksn3.{other.current_key_id}.sealed-elsewhere"),
        )
    dump = Path(service.backup_now()["dumpPath"])
    with db.transaction() as cur:
        cur.execute('DELETE FROM "2_server_keypairs" WHERE enc_private_key LIKE %s', ("ksn3.%",))
    before = keypair_count(db)
    files_before = sorted(dump_dir.iterdir())

    with pytest.raises(RestoreFailed) as info:
        service.restore_now(str(dump))
    message = str(info.value)
    assert other.current_key_id in message and "database unchanged" in message
    assert keypair_count(db) == before  # nothing restored
    assert sorted(dump_dir.iterdir()) == files_before  # not even a safety dump

    previous = tmp_path / "previous_secret.txt"
    previous.write_text(OTHER_SECRET)
    config = replace(service.config, encryption_secret_previous_paths=(previous,))
    restored = BackupService(config, db, REAL_TOOLS).restore_now(str(dump))
    assert Path(restored["safety_dump_path"]).exists()
    assert keypair_count(db) == before + 1
