"""Restore accepts only dump files inside DUMP_DIR (spec §13 W5)."""

import os
import re
import time

import pytest

from services.api.routes.pg_dump import STARTING_GRACE_SECONDS
from shared.store import heartbeats
from tests.support.backup_helpers import set_worker_beat

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
    (module_tmp / "outside_dir").mkdir()
    os.symlink(module_tmp / "gone.dump", folder / "dangling_out.dump")
    os.symlink("../outside.dump", folder / "relative_out.dump")
    os.symlink(module_tmp / "outside_dir", folder / "out_dir")
    os.symlink("real.dump", folder / "alias.dump")
    os.symlink(folder / "real.dump", folder / "absolute_alias.dump")
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


# Every path outside DUMP_DIR, whatever lies there, gets this one answer.
OUTSIDE = [
    lambda n: str(n.outside),  # an existing dump file
    lambda n: str(n.outside.parent / "gone.dump"),  # a missing file
    lambda n: str(n.outside.parent / "outside_dir"),  # a folder
    lambda n: str(n.outside.parent),  # the folder above DUMP_DIR
    lambda n: "/etc/passwd",
    lambda n: "/etc",
    lambda n: "/no/such/folder/x.dump",
    lambda n: "../outside.dump",
    lambda n: "../gone.dump",
    lambda n: "sub/../../outside.dump",
    lambda n: "real.dump/../../outside.dump",
    lambda n: str(n.folder / ".." / "outside.dump"),
    lambda n: str(n.folder / "sub" / ".." / "real.dump"),  # ".." is refused even inside
    lambda n: str(n.folder) + "-sibling/x.dump",  # a prefix of DUMP_DIR is not inside
    lambda n: "escape.dump",  # links inside that lead out: existing file,
    lambda n: "dangling_out.dump",  # missing file,
    lambda n: "relative_out.dump",  # relative target,
    lambda n: "out_dir",  # folder,
    lambda n: "out_dir/anything.dump",  # and below it
]


def test_every_outside_path_gets_one_answer(node, db):
    with db.cursor() as cur:
        cur.execute("SELECT count(*) FROM ksn_jobs")
        before = cur.fetchone()[0]
    answers = set()
    for path_of in OUTSIDE:
        body = {"password": PASSWORD, "dump_path": path_of(node)}
        r = node.post("/pg_dump/v1/restore", json=body)
        assert r.status_code == 400, (body, r.text)
        answers.add(r.text)
    assert answers == {
        '{"success":false,"code":"INVALID_DUMP_PATH",'
        f'"msg":"Dump file must be inside the dump directory ({node.folder})"}}'
    }
    with db.cursor() as cur:
        cur.execute("SELECT count(*) FROM ksn_jobs")
        assert cur.fetchone()[0] == before


@pytest.mark.parametrize("name", ["alias.dump", "absolute_alias.dump"])
def test_a_link_that_stays_inside_is_followed(node, name):
    from shared.backup.paths import resolve_dump_path

    assert resolve_dump_path(name, node.folder) == node.folder.resolve() / "real.dump"
    assert resolve_dump_path(str(node.folder / name), node.folder).name == "real.dump"


def test_dump_dir_reached_through_a_link_is_inside_both_ways(node, module_tmp):
    from shared.backup.paths import resolve_dump_path

    spelled = module_tmp / "dump_link"
    spelled.symlink_to(node.folder)
    real = node.folder.resolve() / "real.dump"
    assert resolve_dump_path(str(spelled / "real.dump"), spelled) == real
    assert resolve_dump_path(str(real), spelled) == real


def test_the_worker_rechecks_containment(node, service):
    from shared.backup.paths import UnsafeDumpPath

    # A job row naming an outside file (written by anything but our API) is refused.
    with pytest.raises(UnsafeDumpPath) as refused:
        service.restore_now(str(node.outside))
    assert refused.value.code == "INVALID_DUMP_PATH"


def test_missing_dump_path_message(node):
    r = node.post("/pg_dump/v1/restore", json={"password": PASSWORD})
    assert r.json() == {
        "success": False,
        "code": "INVALID_DUMP_PATH",
        "msg": "dump_path parameter is required",
    }


def test_without_a_worker_the_answer_is_prompt_and_nothing_is_queued(node, db):
    """No backup worker beats for this node (stopped, or never started): the
    request is answered within seconds (a grace for a worker still starting),
    not after BACKUP_JOB_TIMEOUT_SECONDS, and nothing is queued."""
    for route, body in (
        ("/pg_dump/v1/restore", {"dump_path": str(node.folder / "real.dump")}),
        ("/pg_dump/v1/backup", {}),
    ):
        r = node.post(route, json={"password": PASSWORD, **body})
        assert r.status_code == 503, r.text
        assert r.json()["code"] == "BACKUP_WORKER_DOWN"
        assert "backup worker is not running" in r.json()["msg"]
        # after the grace for a worker still starting (never longer than the job's wait)
        assert r.elapsed.total_seconds() < min(STARTING_GRACE_SECONDS, 2) + 1.5
    with db.cursor() as cur:
        cur.execute("SELECT count(*) FROM ksn_jobs")
        assert cur.fetchone()[0] == 0


def test_the_answer_says_why_the_worker_is_not_running(node, db, config):
    """Never started here, stale, or stopped by the operator: the 503 names
    which, so the operator knows whether to look at the log or start it."""
    node_id = config.effective_node_id

    def reason() -> str:
        r = node.post("/pg_dump/v1/backup", json={"password": PASSWORD})
        assert r.json()["code"] == "BACKUP_WORKER_DOWN", r.text
        return r.json()["msg"]

    try:
        with db.cursor() as cur:
            cur.execute(
                "DELETE FROM ksn_node_heartbeats WHERE node_id = %s AND program = 'backup_worker'",
                (node_id,),
            )
        assert "(it never beat on this node)" in reason()
        set_worker_beat(db, config, age_seconds=3600)
        stale = reason()  # 3600 s, plus the request's grace for a worker still starting
        assert re.search(r"\(no heartbeat for 360\d s\)", stale), stale
        set_worker_beat(db, config, age_seconds=0)
        with db.cursor() as cur:
            heartbeats.stop(cur, node_id, "backup_worker")  # this process's pid: its row
        stopped = reason()  # after the grace: a stop that recent may be a restart
        assert "(stopped cleanly at 20" in stopped, stopped
        assert "`ksnode ctl start backup_worker`" in stopped
        with db.cursor() as cur:  # stopped an hour ago: no restart under way
            cur.execute(
                "UPDATE ksn_node_heartbeats SET stopped_at = now() - interval '1 hour'"
                " WHERE node_id = %s AND program = 'backup_worker'",
                (node_id,),
            )
        started = time.monotonic()
        assert "(stopped cleanly at 20" in reason()
        assert time.monotonic() - started < 1.0  # at once, without the start-up grace
    finally:
        with db.cursor() as cur:
            cur.execute(
                "DELETE FROM ksn_node_heartbeats WHERE node_id = %s AND program = 'backup_worker'",
                (node_id,),
            )
