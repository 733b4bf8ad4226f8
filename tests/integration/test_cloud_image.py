"""A cloud image end to end: fetched over HTTP (loopback) with its digest, a qcow2 overlay,
UEFI boot on q35 under TCG, cloud-init reading our NoCloud seed (our client key, our pinned host
key), provisioning over SSH, and an ACPI power-down.

No cloud image can be downloaded here, so the test builds one from Debian packages
(tests/integration/build_cloud_image.sh: debootstrap + cloud-init + systemd-boot, GPT disk) and
caches it by the script's hash.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import http.server
import os
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from envdeck.backend.vm.argv import qemu_binary
from tests.conftest import require, require_tool
from tests.integration.instance_helpers import envdeck, kill_everything, list_json

pytestmark = pytest.mark.integration

BUILDER = Path(__file__).with_name("build_cloud_image.sh")
PRODUCT_BUILDER = Path(__file__).parents[2] / "backend" / "images" / "debian_disk.sh"


def cached_cloud_image(arch: str) -> Path:
    """The test cloud image for ``arch``, built once per builder version and cached (x86_64:
    several minutes; aarch64, whose packages' scripts run through the host's qemu-aarch64: see
    test_cloud_image_aarch64.py)."""
    require(os.geteuid() == 0, "root (debootstrap builds the test cloud image)")
    require_tool("debootstrap", "mkfs.vfat", "mcopy", "sfdisk", "qemu-img", qemu_binary(arch))
    version = hashlib.sha256(BUILDER.read_bytes() + PRODUCT_BUILDER.read_bytes()).hexdigest()[:12]
    cache = (
        Path(os.environ.get("ENVDECK_CACHE") or Path.home() / ".cache" / "envdeck-test-cache")
        / "cloud-image"
    )
    image = cache / f"debian-cloud-{arch}-{version}.qcow2"
    if not image.exists():
        cache.mkdir(parents=True, exist_ok=True)
        for old in cache.glob(f"debian-cloud-{arch}-*.qcow2"):
            old.unlink()
        began = time.monotonic()
        subprocess.run(["bash", str(BUILDER), "--arch", arch, str(image)], check=True, timeout=3600)
        print(f"\nbuilt the {arch} test cloud image in {time.monotonic() - began:.0f}s")
    return image


@pytest.fixture(scope="session")
def cloud_image() -> Path:
    require(os.path.exists("/usr/share/OVMF/OVMF_CODE_4M.fd"), "UEFI firmware (package ovmf)")
    return cached_cloud_image("x86_64")


@contextlib.contextmanager
def serving(image: Path, root: Path) -> Iterator[str]:
    """``image`` on an HTTP server on 127.0.0.1, as a cloud provider would offer it: its URL."""
    root.mkdir()
    try:
        os.link(image, root / "debian-cloud.qcow2")
    except OSError:  # another filesystem
        shutil.copy(image, root / "debian-cloud.qcow2")
    handler = functools.partial(QuietHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/debian-cloud.qcow2"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def served(cloud_image: Path, tmp_path: Path) -> Iterator[str]:
    with serving(cloud_image, tmp_path / "www") as url:
        yield url


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the base class's name
        pass


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return "sha256:" + digest.hexdigest()


def test_cloud_image_boots_with_our_seed_and_keys(
    envdeck_home: Path,
    tmp_path: Path,
    served: str,
    cloud_image: Path,
    monkeypatch: pytest.MonkeyPatch,
):
    monkeypatch.setenv("ENVDECK_CACHE", str(tmp_path / "cache"))  # a real download every run
    spec = tmp_path / "cloud.yaml"
    spec.write_text(
        "cpus: 2\nmemory: 1GiB\ndisk: 4GiB\n"
        f"images:\n  - location: {served}\n    arch: x86_64\n    digest: {sha256_of(cloud_image)}\n"
        "provision:\n  - mode: system\n    script: |\n"
        "      echo provisioned-by-envdeck > /root/provisioned\n"
    )
    try:
        created = envdeck("create", "cloud", "-f", str(spec), check=True, timeout=600)
        assert "downloading debian-cloud.qcow2" in created.stderr and "100%" in created.stderr
        inst = envdeck_home / "instances" / "cloud"
        assert (inst / "cidata.iso").stat().st_mode & 0o777 == 0o600
        started = envdeck("start", "cloud", timeout=900)
        assert started.returncode == 0, started.stdout + started.stderr
        row = list_json()["cloud"]
        assert row["state"] == "ready" and row["accel"] == "tcg"
        assert (
            "[cloud-init] status: done" in envdeck("logs", "cloud", check=True).stdout
        )  # ready waits for it
        os_release = envdeck("exec", "cloud", "--", "cat", "/etc/os-release", check=True).stdout
        assert "bookworm" in os_release
        # cloud-init applied our seed: our host key (the pinned one) and nothing else.
        keys = envdeck(
            "exec", "cloud", "--", "sh", "-c", "ls /etc/ssh/ssh_host_*_key", check=True
        ).stdout.split()
        assert keys == ["/etc/ssh/ssh_host_ed25519_key"]
        guest_pub = envdeck(
            "exec", "cloud", "--", "cat", "/etc/ssh/ssh_host_ed25519_key.pub", check=True
        ).stdout
        pinned = (inst / "ssh" / "known_hosts").read_text().split()[2]
        assert guest_pub.split()[1] == pinned
        assert (
            envdeck("exec", "cloud", "--", "cat", "/root/provisioned", check=True).stdout.strip()
            == "provisioned-by-envdeck"
        )
        assert "the guest powered off" in envdeck("stop", "cloud", check=True, timeout=180).stdout

        # A second instance from the same image uses the cached copy: no download.
        again = envdeck("create", "cloud2", "-f", str(spec), check=True, timeout=120)
        assert "downloading" not in again.stdout + again.stderr
    finally:
        envdeck("stop", "cloud", timeout=180)
        kill_everything(envdeck_home)
