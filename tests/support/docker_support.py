"""Docker engine, local base images and compose for the Docker tests.

Public image registries are out of reach here, so the images the Dockerfile
and the compose file name (``python:3.11-slim-bookworm``, ``postgres:17``)
are replaced by local equivalents: a Debian bookworm root made with
``debootstrap`` from the mirror apt already uses, imported with ``docker
import``, and a PostgreSQL image built on it from Debian's packages. The
root file system is cached as a tarball in ``KSNODE_TEST_CACHE`` (default
/var/cache/ksnode-test) and the images stay in the daemon, so only the first
run pays for debootstrap.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parents[1] / "docker"
CACHE_DIR = Path(os.environ.get("KSNODE_TEST_CACHE", "/var/cache/ksnode-test"))
SUITE = "bookworm"
# Bump a tag's suffix when what goes into that image changes.
BASE_TAG = "ksnode-test/bookworm-python:2"
PG_TAG = "ksnode-test/postgres-bookworm:2"
BASE_PACKAGES = "python3,python3-venv,ca-certificates"
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
# This machine's CA bundle: where HTTPS goes through an intercepting proxy, its
# CA is in here, and pip inside the image builds must trust it too.
HOST_CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")


class DockerUnavailable(Exception):
    """The daemon is not running and could not be started; says why."""


def run(args: list[str], *, timeout: float = 600, check: bool = True, **kw):
    result = subprocess.run(args, capture_output=True, text=True, timeout=timeout, **kw)
    if check and result.returncode != 0:
        raise RuntimeError(
            f"{' '.join(args[:4])}... exited {result.returncode}: "
            f"{(result.stdout + result.stderr).strip()[-3000:]}"
        )
    return result


def daemon_answers() -> bool:
    if shutil.which("docker") is None:
        return False
    try:
        return run(["docker", "info"], timeout=20, check=False).returncode == 0
    except subprocess.TimeoutExpired:
        return False


class Daemon:
    """The Docker daemon: reused when running, else started as
    ``dockerd --bridge=none --iptables=false`` and stopped again afterwards."""

    def __init__(self, log_dir: Path):
        self.log_file = log_dir / "dockerd.log"
        self.process: subprocess.Popen | None = None

    def ensure(self) -> None:
        if daemon_answers():
            return
        dockerd = shutil.which("dockerd")
        if dockerd is None or shutil.which("docker") is None:
            raise DockerUnavailable("docker/dockerd not installed (apt-get install docker.io)")
        if os.geteuid() != 0:
            raise DockerUnavailable("the Docker daemon is not running and we are not root")
        with open(self.log_file, "wb") as log:
            self.process = subprocess.Popen(
                [dockerd, "--bridge=none", "--iptables=false"],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if daemon_answers():
                return
            if self.process.poll() is not None:
                break
            time.sleep(0.5)
        self.stop()
        tail = self.log_file.read_text(errors="replace").strip().splitlines()[-3:]
        raise DockerUnavailable("dockerd did not start: " + " | ".join(tail))

    def stop(self) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        self.process = None


def image_exists(tag: str) -> bool:
    return run(["docker", "image", "inspect", tag], check=False, timeout=60).returncode == 0


def image_id(tag: str) -> str | None:
    result = run(["docker", "image", "inspect", "-f", "{{.Id}}", tag], check=False, timeout=60)
    return result.stdout.strip() if result.returncode == 0 else None


# The last node image built, kept between runs: its layers (the libraries'
# layer above all, docker/Dockerfile) are the next build's cache. Removing a
# run's own tag alone would delete them with it.
BUILD_CACHE_TAG = "ksnode-test/node:build-cache"


def keep_as_build_cache(image: str) -> None:
    """Tag ``image`` as the build cache and remove the one it replaces (only
    the layers no newer image shares), so one node image stays on disk."""
    old = image_id(BUILD_CACHE_TAG)
    run(["docker", "tag", image, BUILD_CACHE_TAG], timeout=60)
    if old is not None and old != image_id(BUILD_CACHE_TAG):
        run(["docker", "image", "rm", old], check=False, timeout=120)


def debian_mirror() -> str:
    """The Debian mirror apt uses on this machine (one-line or deb822 sources)."""
    files = [Path("/etc/apt/sources.list")]
    files += sorted(Path("/etc/apt/sources.list.d").glob("*"))
    for path in files:
        try:
            text = path.read_text()
        except OSError:
            continue
        for match in re.finditer(r"(?:^deb\s+(?:\[[^]]*\]\s+)?|^URIs:\s*)(\S+)", text, re.M):
            url = match.group(1).rstrip("/")
            if url.startswith("http") and url.endswith("/debian"):
                return url
    return "http://deb.debian.org/debian"


def base_image() -> str:
    """A bookworm image with python3 and venv, as python:3.11-slim-bookworm has."""
    if image_exists(BASE_TAG):
        return BASE_TAG
    tarball = CACHE_DIR / f"{BASE_TAG.split('/')[1].replace(':', '-')}.tar"
    if not tarball.is_file():
        _debootstrap_tarball(tarball)
    run(
        [
            "docker",
            "import",
            "--change",
            f"ENV PATH={DEFAULT_PATH}",
            "--change",
            "ENV LANG=C.UTF-8",
            "--change",
            "ENV PIP_CERT=/etc/ssl/certs/ca-certificates.crt",
            "--change",
            'CMD ["/bin/bash"]',
            str(tarball),
            BASE_TAG,
        ],
        timeout=600,
    )
    return BASE_TAG


def _debootstrap_tarball(tarball: Path) -> None:
    if shutil.which("debootstrap") is None:
        raise RuntimeError("debootstrap is not installed (apt-get install debootstrap)")
    tarball.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=tarball.parent) as work:
        rootfs = Path(work) / "rootfs"
        run(
            [
                "debootstrap",
                "--variant=minbase",
                f"--include={BASE_PACKAGES}",
                SUITE,
                str(rootfs),
                debian_mirror(),
            ],
            timeout=1800,
        )
        if HOST_CA_BUNDLE.is_file():
            shutil.copyfile(HOST_CA_BUNDLE, rootfs / str(HOST_CA_BUNDLE).lstrip("/"))
        for leftover in ("var/cache/apt/archives", "var/lib/apt/lists"):
            for item in (rootfs / leftover).glob("*"):
                if item.is_file():
                    item.unlink()
        partial = Path(work) / "rootfs.tar"
        run(["tar", "-C", str(rootfs), "--numeric-owner", "-cf", str(partial), "."], timeout=600)
        os.replace(partial, tarball)


def postgres_image() -> str:
    """Debian's PostgreSQL server on the base image, with an entrypoint that
    honours POSTGRES_USER/PASSWORD/DB like the official image."""
    if image_exists(PG_TAG):
        return PG_TAG
    run(
        [
            "docker",
            "build",
            "--network",
            "host",
            "--build-arg",
            f"BASE_IMAGE={base_image()}",
            "-t",
            PG_TAG,
            "-f",
            str(HERE / "postgres.Dockerfile"),
            str(HERE),
        ],
        timeout=1200,
        env=legacy_build_env(),
    )
    return PG_TAG


def postgres_major(tag: str) -> int:
    out = run(["docker", "run", "--rm", "--network", "none", tag, "pg-major"], timeout=120)
    return int(out.stdout.strip())


def legacy_build_env() -> dict[str, str]:
    """The classic builder: docker.io from Debian ships no buildx plugin."""
    return {**os.environ, "DOCKER_BUILDKIT": "0", "COMPOSE_BAKE": "false"}


def inspect(container: str) -> dict:
    return json.loads(run(["docker", "inspect", container], timeout=60).stdout)[0]
