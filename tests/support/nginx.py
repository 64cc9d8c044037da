"""A real nginx in front of a test node, configured from the shipped site
file (deploy/nginx/ksnode.conf) with only its host-specific lines replaced:
the listen address, the certificate (self-signed, made here) and the node's
port. nginx runs in the foreground (``daemon off``) with its own prefix in
a temporary folder; it is never a system service."""

from __future__ import annotations

import os
import shutil
import socket
import ssl
import subprocess
import time
from pathlib import Path

from shared.db.embedded import free_port
from tests.support.fakes.tls import make_ca, make_server_cert, pem
from tests.support.requirements import unavailable

ROOT = Path(__file__).resolve().parents[2]
SITE_FILE = ROOT / "deploy" / "nginx" / "ksnode.conf"
REQUIRE = "KSNODE_REQUIRE_PROXY_TESTS"
SERVER_NAME = "ks.example.com"


def nginx_binary() -> str:
    """nginx's path; skips the test when there is none (a failure with
    KSNODE_REQUIRE_PROXY_TESTS=1, which .ci/run sets after installing it)."""
    found = shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin:/usr/local/sbin")
    if found is None:
        unavailable("no nginx on this machine (apt-get install nginx-light)", REQUIRE)
    return found


def certificates(folder: Path) -> tuple[Path, Path, Path]:
    """A test CA (what the clients trust) and nginx's certificate for
    SERVER_NAME, localhost and 127.0.0.1 with its key (0600)."""
    ca_key, ca_cert = make_ca()
    cert_pem, key_pem = make_server_cert(ca_key, ca_cert, names=(SERVER_NAME, "localhost"))
    ca_path, cert_path, key_path = folder / "ca.pem", folder / "cert.pem", folder / "key.pem"
    ca_path.write_bytes(pem(ca_cert))
    cert_path.write_bytes(cert_pem)
    key_path.write_bytes(key_pem)
    key_path.chmod(0o600)
    return ca_path, cert_path, key_path


def replace_line(text: str, old: str, new: str) -> str:
    """``text`` with the line ``old`` replaced; fails if the site file no
    longer has it (the test must run the file we ship, not a drifted copy)."""
    if text.count(old) != 1:
        raise AssertionError(f"{SITE_FILE} no longer has exactly one {old.strip()!r}")
    return text.replace(old, new)


def site_for_test(node_port: int, port: int, cert: Path, key: Path) -> str:
    text = SITE_FILE.read_text()
    text = replace_line(text, "server 127.0.0.1:4201;", f"server 127.0.0.1:{node_port};")
    text = replace_line(text, "listen 443 ssl;", f"listen 127.0.0.1:{port} ssl;")
    text = replace_line(text, f"/etc/letsencrypt/live/{SERVER_NAME}/fullchain.pem;", f"{cert};")
    return replace_line(text, f"/etc/letsencrypt/live/{SERVER_NAME}/privkey.pem;", f"{key};")


def main_conf(prefix: Path, site: Path) -> str:
    """nginx.conf around the site file, everything under ``prefix``."""
    user = "user root;\n" if os.geteuid() == 0 else ""  # workers read the test's files
    temp = "\n".join(
        f"    {name}_temp_path {prefix / name};"
        for name in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    return f"""{user}daemon off;
worker_processes 1;
worker_rlimit_nofile 8192;
pid {prefix / "nginx.pid"};
error_log {prefix / "error.log"} warn;
events {{ worker_connections 4096; }}
http {{
    access_log {prefix / "access.log"};
{temp}
    include {site};
}}
"""


class Nginx:
    def __init__(self, node_port: int, folder: Path):
        self.binary = nginx_binary()
        self.folder = folder
        self.port = free_port()
        self.url = f"https://127.0.0.1:{self.port}"
        folder.mkdir(parents=True, exist_ok=True)
        # self.cert: the file the clients trust (the test CA)
        self.cert, server_cert, key = certificates(folder)
        site = folder / "ksnode.conf"
        site.write_text(site_for_test(node_port, self.port, server_cert, key))
        self.conf = folder / "nginx.conf"
        self.conf.write_text(main_conf(folder, site))
        self.process: subprocess.Popen | None = None

    def start(self) -> Nginx:
        log = (self.folder / "nginx.out").open("ab")
        self.process = subprocess.Popen(
            [self.binary, "-c", str(self.conf), "-p", str(self.folder)],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError("nginx exited: " + self.output())
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return self
            except OSError:
                time.sleep(0.1)
        raise AssertionError("nginx did not listen: " + self.output())

    def output(self) -> str:
        parts = [self.folder / "nginx.out", self.folder / "error.log"]
        return "".join(p.read_text(errors="replace") for p in parts if p.exists())

    def ssl_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.cert))

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()  # SIGTERM: fast shutdown
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
