"""POST /pg_dump/v1/get_backup_history (spec §5.11, design §11)."""

import re

import pytest

ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


@pytest.fixture(scope="module", autouse=True)
def history_rows(db):
    with db.cursor() as cur:
        cur.execute('DELETE FROM "2_pg_dumps"')
        cur.execute(
            'INSERT INTO "2_pg_dumps" (dump_id, status, dump_path, meta, created_at) VALUES'
            " (gen_random_uuid(), 'COMPLETED', '/d/a.dump', '{\"dump_size\": 5, \"dump_duration\": 0.5}', now() - interval '1 hour'),"
            " (gen_random_uuid(), 'FAILED', NULL, '{\"error\": \"boom\"}', now() - interval '3 days'),"
            " (gen_random_uuid(), 'DELETED', '/d/b.dump', NULL, now() - interval '20 days')"
        )


def test_all_rows_newest_first_in_reference_shape(api):
    for r in (
        api.post("/pg_dump/v1/get_backup_history"),
        api.post("/pg_dump/v1/get_backup_history", json={}),
    ):
        data = r.json()["data"]
        assert [row["status"] for row in data] == ["COMPLETED", "FAILED", "DELETED"]
        assert list(data[0]) == [
            "dump_id",
            "status",
            "dump_path",
            "meta",
            "created_at",
            "updated_at",
        ]
        assert data[0]["meta"] == {"dump_size": 5, "dump_duration": 0.5}
        assert data[1]["dump_path"] is None and data[1]["meta"] == {"error": "boom"}
        assert ISO.match(data[0]["created_at"])


@pytest.mark.parametrize("days,count", [(1, 1), ("7", 2), (7.5, 2), (1000, 3)])
def test_days_filter(api, days, count):
    r = api.post("/pg_dump/v1/get_backup_history", json={"days": days})
    assert len(r.json()["data"]) == count


@pytest.mark.parametrize("days", [0, -1, 1001, "abc", True, [], {}, "1e400"])
def test_invalid_days(api, days):
    r = api.post("/pg_dump/v1/get_backup_history", json={"days": days})
    assert r.status_code == 400
    assert r.json() == {
        "success": False,
        "code": "INVALID_DAYS",
        "msg": "Days parameter must be between 1 and 1000",
    }
