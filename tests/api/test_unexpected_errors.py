"""An unexpected exception is a JSON 500 carrying a request id that the log
line names too — never an HTML page or a traceback in the response."""

import logging

from services.api.app import create_app
from tests.conftest import ApiServer, build_node_context


def test_unexpected_error_is_json_500_with_request_id_in_log(config, db, cipher, caplog):
    app = create_app(build_node_context(config, db, cipher))

    @app.get("/boom")
    def boom():
        raise RuntimeError("secret detail from deep inside")

    server = ApiServer(app).start()
    try:
        with caplog.at_level(logging.ERROR, logger="api"):
            r = server.get("/boom")
    finally:
        server.stop()
    assert r.status_code == 500
    body = r.json()
    assert body["success"] is False and body["code"] == "UNKNOWN_ERROR"
    request_id = r.headers["X-Request-Id"]
    assert request_id in body["msg"]
    assert "secret detail" not in r.text and "Traceback" not in r.text
    records = [rec for rec in caplog.records if getattr(rec, "request_id", None) == request_id]
    assert records and records[0].exc_info is not None


def test_database_outage_is_503_json(config, cipher, caplog):
    from dataclasses import replace

    from shared.db.pool import Database

    dead = Database(replace(config, db_port=9), acquire_timeout=1)
    ctx = build_node_context(config, Database(config), cipher)
    ctx.db = dead
    server = ApiServer(create_app(ctx)).start()
    try:
        with caplog.at_level(logging.ERROR, logger="api"):
            answers = [
                server.post("/keyshare/v1/check", json={"public_key": "02" + "00" * 32})
                for _ in range(30)
            ]
        status = server.get("/status").json()
    finally:
        server.stop()
    r = answers[0]
    assert r.status_code == 503
    assert r.json()["code"] == "SERVICE_UNAVAILABLE"
    assert all(a.status_code == 503 for a in answers)
    # Not a line per failed request: the first at once, then one a second
    # saying how many were left out.
    lines = [rec for rec in caplog.records if getattr(rec, "event", "") == "request.db_unavailable"]
    assert 1 <= len(lines) < 30 and lines[0].left_out == 0
    assert len(lines) + sum(rec.left_out for rec in lines) <= 30
    assert status["is_db_connected"] is False
