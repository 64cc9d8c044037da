"""nginx's own answers (the site file's JSON 413, 429 and 503) carry the
node's CORS header: without it a browser wallet cannot read them and sees a
bare network error, e.g. while the node is down or restarting."""

from __future__ import annotations

import requests

from shared.db.embedded import free_port
from tests.support.nginx import Nginx


def test_nginx_own_answers_carry_the_cors_header(tmp_path):
    nobody = free_port()  # no node listens here: nginx answers 502 → its JSON 503
    nginx = Nginx(nobody, tmp_path / "nginx").start()
    try:
        down = requests.get(
            nginx.url + "/status",
            headers={"Origin": "https://wallet.example"},
            verify=str(nginx.cert),
            timeout=30,
        )
        too_large = requests.post(
            nginx.url + "/keyshare/v1/register",
            data=b"x" * (256 * 1024),
            headers={"Origin": "https://wallet.example", "Content-Type": "application/json"},
            verify=str(nginx.cert),
            timeout=30,
        )
    finally:
        nginx.stop()
    assert down.status_code == 503
    assert down.json()["code"] == "SERVICE_UNAVAILABLE"
    assert down.headers.get("Access-Control-Allow-Origin") == "*"
    assert too_large.status_code == 413
    assert too_large.json()["code"] == "PAYLOAD_TOO_LARGE"
    assert too_large.headers.get("Access-Control-Allow-Origin") == "*"
