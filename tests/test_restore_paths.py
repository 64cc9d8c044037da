"""Restore accepts only dump files inside DUMP_DIR (spec §13 W5)."""

import os

import pytest

PASSWORD = "test-admin-password"


@pytest.fixture(scope="module")
def node(start_api, module_tmp):
    folder = module_tmp / "restore_dump"
    folder.mkdir()
    (folder / "real.dump").write_bytes(b"PGDMP-not-really")
    (folder / "sub").mkdir()
    outside = module_tmp / "outside.dump"
    outside.write_bytes(b"PGDMP")
    os.symlink(outside, folder / "escape.dump")
    (folder / "text.dump").write_text("hello")
    server = start_api(dump_dir=folder, backup_job_timeout_seconds=2)
    server.folder = folder
    server.outside = outside
    return server


@pytest.mark.parametrize(
    "path_of,code",
    [
        (lambda n: str(n.folder / "missing.dump"), "DUMP_FILE_NOT_FOUND"),
        (lambda n: str(n.folder / "sub"), "INVALID_DUMP_FILE"),
        (lambda n: str(n.folder / "escape.dump"), "INVALID_DUMP_PATH"),
        (lambda n: str(n.folder / "sub" / ".." / ".." / "outside.dump"), "INVALID_DUMP_PATH"),
        (lambda n: str(n.outside), "INVALID_DUMP_PATH"),
        (lambda n: "/etc/passwd", "INVALID_DUMP_PATH"),
        (lambda n: str(n.folder / "text.dump"), "INVALID_DUMP_FILE"),
        (lambda n: "", "INVALID_DUMP_PATH"),
        (lambda n: 5, "INVALID_DUMP_PATH"),
    ],
)
def test_unsafe_paths_are_rejected_before_any_job(node, db, path_of, code):
    with db.cursor() as cur:
        cur.execute("SELECT count(*) FROM ksn_jobs")
        before = cur.fetchone()[0]
    r = node.post("/pg_dump/v1/restore", json={"password": PASSWORD, "dump_path": path_of(node)})
    assert r.status_code == 400, r.text
    assert r.json()["code"] == code
    with db.cursor() as cur:
        cur.execute("SELECT count(*) FROM ksn_jobs")
        assert cur.fetchone()[0] == before


def test_missing_dump_path_message(node):
    r = node.post("/pg_dump/v1/restore", json={"password": PASSWORD})
    assert r.json() == {
        "success": False,
        "code": "INVALID_DUMP_PATH",
        "msg": "dump_path parameter is required",
    }


def test_without_a_worker_the_wait_is_bounded(node):
    r = node.post(
        "/pg_dump/v1/restore",
        json={"password": PASSWORD, "dump_path": str(node.folder / "real.dump")},
    )
    assert r.status_code == 504
    assert r.json()["code"] == "BACKUP_TIMEOUT"
