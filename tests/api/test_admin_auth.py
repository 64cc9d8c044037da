"""Admin password (constant-time, spec §4.8) and per-route limits."""

import pytest


@pytest.mark.parametrize("route", ["/pg_dump/v1/backup", "/pg_dump/v1/restore"])
@pytest.mark.parametrize(
    "body,msg",
    [
        ({}, "Admin password is required"),
        ({"password": ""}, "Admin password is required"),
        ({"password": 123}, "Admin password is required"),
        ({"password": "wrong"}, "Invalid admin password"),
    ],
)
def test_password_required(api, route, body, msg):
    r = api.post(route, json=body)
    assert r.status_code == 401
    assert r.json() == {"success": False, "code": "UNAUTHORIZED", "msg": msg}


@pytest.mark.parametrize("route", ["/pg_dump/v1/backup", "/pg_dump/v1/restore"])
@pytest.mark.parametrize("body", [{"password": "anything"}, {}])
def test_unset_admin_password_answers_admin_disabled(start_api, route, body):
    server = start_api(admin_password="")
    r = server.post(route, json=body)
    assert r.status_code == 503
    assert r.json() == {
        "success": False,
        "code": "ADMIN_DISABLED",
        "msg": "admin routes are disabled: ADMIN_PASSWORD is not set",
    }


@pytest.mark.parametrize("route", ["/pg_dump/v1/backup", "/pg_dump/v1/restore"])
def test_the_guides_example_admin_password_opens_nothing(start_api, route):
    # ADMIN_PASSWORD=admin_password is the operator guide's (and env.example's)
    # example: published, so anyone reaching the port could take or restore
    # backups with it. Left unchanged, the admin routes stay disabled.
    server = start_api(admin_password="admin_password")
    r = server.post(route, json={"password": "admin_password", "dump_path": "x.dump"})
    assert r.status_code == 503
    body = r.json()
    assert body["code"] == "ADMIN_DISABLED"
    assert "example" in body["msg"] and "ADMIN_PASSWORD" in body["msg"]
    # Nor does it show the backup history's operator details.
    history = server.post("/pg_dump/v1/get_backup_history", json={"password": "admin_password"})
    assert history.status_code == 200
    for entry in history.json()["data"]:
        assert set(entry["meta"]) <= {"dump_size", "dump_duration", "error"}


def test_wrong_password_never_echoed(api):
    r = api.post("/pg_dump/v1/backup", json={"password": "s3cr3t-guess"})
    assert "s3cr3t-guess" not in r.text


@pytest.mark.parametrize(
    "route,limit",
    [("/pg_dump/v1/backup", 5), ("/pg_dump/v1/restore", 3), ("/pg_dump/v1/get_backup_history", 5)],
)
def test_route_limits(start_api, route, limit):
    server = start_api(rate_limit_per_minute=100)
    codes = [server.post(route, json={"password": "wrong"}).status_code for _ in range(limit + 1)]
    assert codes[-1] == 429 and 429 not in codes[:-1]
    last = server.post(route, json={})
    assert last.headers["RateLimit-Policy"] == f"{limit};w=60"
