"""Real services for the container tests: a Docker engine, an offline base image, a registry.

Each is started only when missing, so the same fixtures work on a developer machine with
Docker running and on a bare CI machine (``.ci/run`` installs docker.io, docker-registry,
debootstrap and apache2-utils). Docker Hub is out of reach here, so the base image is built
from Debian packages with debootstrap, as DESIGN.md describes.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

BASE_IMAGE = "gitops-mlops/base:bookworm-python3"


def sh(*command: str, check: bool = True, **kwargs: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, capture_output=True, text=True, check=check, **kwargs)


def wait_until(probe: object, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if probe():
            return
        time.sleep(0.5)
    raise RuntimeError(f"{what} not up after {seconds} s")


def ensure_docker() -> None:
    """A running Docker engine, started (vfs storage, no iptables) when there is none."""
    if sh("docker", "info", check=False).returncode == 0:
        return
    if not shutil.which("dockerd"):
        raise RuntimeError("no Docker engine: apt-get install docker.io (or run .ci/run)")
    log = Path(tempfile.gettempdir()) / "gitops-mlops-dockerd.log"
    subprocess.Popen(
        ["dockerd", "--storage-driver=vfs", "--iptables=false"],
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    wait_until(lambda: sh("docker", "info", check=False).returncode == 0, 60, "dockerd")


def ensure_base_image() -> str:
    """A Debian bookworm image with python3 and venv, built once with debootstrap."""
    if sh("docker", "image", "inspect", BASE_IMAGE, check=False).returncode == 0:
        return BASE_IMAGE
    with tempfile.TemporaryDirectory() as scratch:
        rootfs = Path(scratch) / "rootfs"
        sh(
            "debootstrap", "--variant=minbase", "--include=python3,python3-venv,ca-certificates",
            "bookworm", str(rootfs),
        )  # fmt: skip
        # The machine's CA bundle lets pip inside builds reach the package index.
        shutil.copy("/etc/ssl/certs/ca-certificates.crt", rootfs / "etc/ssl/certs/")
        tar = subprocess.Popen(["tar", "-C", str(rootfs), "-c", "."], stdout=subprocess.PIPE)
        sh("docker", "import", "-", BASE_IMAGE, stdin=tar.stdout)
        tar.wait()
    return BASE_IMAGE


@dataclass(frozen=True)
class Images:
    """The engine's tagged references and dangling image ids at one moment."""

    references: frozenset[str]
    dangling: frozenset[str]

    @classmethod
    def now(cls) -> Images:
        if sh("docker", "info", check=False).returncode != 0:
            return cls(frozenset(), frozenset())  # the tests start the engine: all is theirs
        listed = sh("docker", "images", "--format={{.Repository}}:{{.Tag}}").stdout.split()
        dangling = sh("docker", "images", "--quiet", "--no-trunc", "--filter=dangling=true")
        return cls(
            frozenset(name for name in listed if "<none>" not in name),
            frozenset(dangling.stdout.split()),
        )

    def remove_newer(self) -> None:
        """Remove what the tests added but the base image: with vfs storage every image is a
        full copy of its layers, so a run leaks gigabytes without this."""
        after = Images.now()
        for reference in sorted(after.references - self.references - {BASE_IMAGE}):
            sh("docker", "rmi", reference, check=False)
        for image in sorted(after.dangling - self.dangling):
            sh("docker", "rmi", image, check=False)


def image_size(reference: str) -> int:
    return int(sh("docker", "image", "inspect", "--format={{.Size}}", reference).stdout)


@dataclass
class Registry:
    """A local registry (Debian's docker-registry) that requires htpasswd basic auth."""

    host: str
    username: str
    password: str
    process: subprocess.Popen[bytes]

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=30)


def free_port() -> int:
    """A local TCP port nobody listens on."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_registry(root: Path, username: str = "ci", password: str = "s3cret-pass") -> Registry:  # noqa: S107 - a throwaway local test registry
    port = free_port()
    htpasswd = root / "htpasswd"
    sh("htpasswd", "-Bbc", str(htpasswd), username, password)
    config = root / "config.yml"
    config.write_text(
        "version: 0.1\n"
        f"storage:\n  filesystem:\n    rootdirectory: {root / 'data'}\n"
        f"http:\n  addr: 127.0.0.1:{port}\n"
        f"auth:\n  htpasswd:\n    realm: basic-realm\n    path: {htpasswd}\n"
    )
    process = subprocess.Popen(
        ["docker-registry", "serve", str(config)],
        stdout=(root / "registry.log").open("w"),
        stderr=subprocess.STDOUT,
    )
    host = f"127.0.0.1:{port}"

    def answers() -> bool:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return True
        except OSError:
            return False

    wait_until(answers, 30, "docker-registry")
    return Registry(host, username, password, process)
