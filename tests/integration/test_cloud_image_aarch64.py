"""An aarch64 cloud image end to end (issue #13 item 5): fetched over loopback HTTP with its
digest, booted on ``-M virt`` with the aarch64 UEFI firmware (AAVMF) under TCG, cloud-init
reading the same NoCloud seed as on x86_64 (our client key, our pinned host key), provisioning
over SSH, ``uname -m`` → aarch64, and an ACPI power-down.

The image is built like the x86_64 one (build_cloud_image.sh --arch aarch64: debootstrap of
Debian's arm64 packages, whose scripts run on this host through its qemu-aarch64 binfmt handler)
and cached by the builder's hash. The build and the boot to ready are printed.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from envdeck.backend.instances.api import qemu_argv
from tests.conftest import require
from tests.integration.instance_helpers import envdeck, kill_everything, list_json
from tests.integration.test_cloud_image import cached_cloud_image, serving, sha256_of

pytestmark = pytest.mark.integration


@pytest.fixture(scope="session")
def aarch64_cloud_image() -> Path:
    require(
        os.path.exists("/usr/share/AAVMF/AAVMF_CODE.fd"),
        "aarch64 UEFI firmware (package qemu-efi-aarch64)",
    )
    require(
        "flags: " in _binfmt("qemu-aarch64") and "F" in _binfmt("qemu-aarch64").split("flags: ")[1],
        "the host's qemu-aarch64 binfmt handler with flag F (package qemu-user-static)",
    )
    return cached_cloud_image("aarch64")


def _binfmt(name: str) -> str:
    try:
        return Path("/proc/sys/fs/binfmt_misc", name).read_text()
    except OSError:
        return ""


@pytest.fixture
def served(aarch64_cloud_image: Path, tmp_path: Path) -> Iterator[str]:
    with serving(aarch64_cloud_image, tmp_path / "www") as url:
        yield url


# Building the image on a fresh machine (arm64 debootstrap through qemu-user) takes ~15 min,
# counted against this test's timeout (its fixture runs in the test's setup).
@pytest.mark.timeout(3600)
def test_aarch64_cloud_image_boots_on_virt_with_our_seed_and_keys(
    envdeck_home: Path,
    tmp_path: Path,
    served: str,
    aarch64_cloud_image: Path,
    monkeypatch: pytest.MonkeyPatch,
):
    monkeypatch.setenv("ENVDECK_CACHE", str(tmp_path / "cache"))  # a real download every run
    spec = tmp_path / "arm.yaml"
    spec.write_text(
        "arch: aarch64\ncpus: 2\nmemory: 1GiB\ndisk: 4GiB\n"
        f"images:\n  - location: {served}\n    arch: aarch64\n"
        f"    digest: {sha256_of(aarch64_cloud_image)}\n"
        "provision:\n  - mode: system\n    script: |\n"
        "      echo provisioned-by-envdeck > /root/provisioned\n"
    )
    try:
        created = envdeck("create", "arm", "-f", str(spec), check=True, timeout=600)
        assert "downloading debian-cloud.qcow2" in created.stderr and "100%" in created.stderr
        inst = envdeck_home / "instances" / "arm"
        assert (inst / "efivars.fd").stat().st_size == 64 << 20  # the pflash size virt needs
        began = time.monotonic()
        started = envdeck("start", "arm", timeout=1800)
        print(f"\naarch64 cloud image: start -> ready {time.monotonic() - began:.1f}s (TCG)")
        assert started.returncode == 0, started.stdout + started.stderr
        row = list_json()["arm"]
        assert row["state"] == "ready" and row["accel"] == "tcg" and row["arch"] == "aarch64"
        argv = qemu_argv("arm")
        assert argv[0] == "qemu-system-aarch64" and argv[argv.index("-M") + 1] == "virt"
        assert "virtio-blk-pci,drive=disk0,bootindex=0" in argv
        assert envdeck("exec", "arm", "--", "uname", "-m", check=True).stdout.strip() == "aarch64"
        assert "[cloud-init] status: done" in envdeck("logs", "arm", check=True).stdout
        keys = envdeck(
            "exec", "arm", "--", "sh", "-c", "ls /etc/ssh/ssh_host_*_key", check=True
        ).stdout.split()
        assert keys == ["/etc/ssh/ssh_host_ed25519_key"]
        guest_pub = envdeck(
            "exec", "arm", "--", "cat", "/etc/ssh/ssh_host_ed25519_key.pub", check=True
        ).stdout
        pinned = (inst / "ssh" / "known_hosts").read_text().split()[2]
        assert guest_pub.split()[1] == pinned
        assert (
            envdeck("exec", "arm", "--", "cat", "/root/provisioned", check=True).stdout.strip()
            == "provisioned-by-envdeck"
        )
        assert "the guest powered off" in envdeck("stop", "arm", check=True, timeout=300).stdout
    finally:
        envdeck("stop", "arm", timeout=300)
        kill_everything(envdeck_home)
