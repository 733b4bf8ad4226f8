"""Lima ``mounts:`` on a cloud image under QEMU: the seed's bootcmd mounts the 9p shares at every
boot, before sshd (so before "ready"); a writable host folder the guest writes and the host reads
(and the other way), a read-only one the guest cannot write even after remounting it rw (QEMU's
readonly=on). The x86_64 test cloud image is served over loopback HTTP with its digest, as in
test_cloud_image.py. Its kernel must have 9p (Debian's linux-image-cloud-amd64 has none)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.integration.instance_helpers import envdeck, kill_everything, list_json
from tests.integration.test_cloud_image import cloud_image, served, sha256_of

pytestmark = pytest.mark.integration
__all__ = ["cloud_image", "served"]  # the fixtures this module uses


def test_cloud_image_mounts_writable_and_read_only_folders(
    envdeck_home: Path, tmp_path: Path, served: str, cloud_image: Path
):
    shared, readonly = tmp_path / "shared", tmp_path / "readonly"
    shared.mkdir()
    readonly.mkdir()
    (shared / "from-host.txt").write_text("hello from the host\n")
    (readonly / "kept.txt").write_text("do not touch\n")
    spec = tmp_path / "mc.yaml"
    spec.write_text(
        "cpus: 2\nmemory: 1GiB\ndisk: 4GiB\n"
        f"images:\n  - location: {served}\n    arch: x86_64\n    digest: {sha256_of(cloud_image)}\n"
        "mounts:\n"
        f"  - location: {shared}\n    mountPoint: /mnt/shared\n    writable: true\n"
        f"  - location: {readonly}\n    mountPoint: /mnt/ro\n"
    )
    try:
        envdeck("create", "mc", "-f", str(spec), check=True, timeout=600)
        started = envdeck("start", "mc", timeout=900)
        assert started.returncode == 0, started.stdout + started.stderr
        assert "folders mounted" in started.stderr
        assert list_json()["mc"]["state"] == "ready"

        def guest(script: str, check: bool = True) -> str:
            result = envdeck("exec", "mc", "--", "sh", "-c", script, check=check)
            return (result.stdout + (result.stderr if not check else "")).strip()

        table = guest("grep ' 9p ' /proc/self/mounts").splitlines()
        assert [line.split()[:3] for line in table] == [
            ["mount0", "/mnt/shared", "9p"],
            ["mount1", "/mnt/ro", "9p"],
        ]
        assert guest("cat /mnt/shared/from-host.txt") == "hello from the host"
        guest("echo written by the guest > /mnt/shared/from-guest.txt")
        assert (shared / "from-guest.txt").read_text() == "written by the guest\n"
        (shared / "later.txt").write_text("after boot\n")
        assert guest("cat /mnt/shared/later.txt") == "after boot"

        assert guest("cat /mnt/ro/kept.txt") == "do not touch"
        refused = guest("echo x > /mnt/ro/new.txt 2>&1 || echo REFUSED", check=False)
        assert "REFUSED" in refused and "Read-only file system" in refused, refused
        # the guest's own ro option removed: QEMU still refuses the write
        failed = guest(
            "mount -o remount,rw /mnt/ro 2>&1; echo x > /mnt/ro/new.txt 2>&1 && echo WROTE",
            check=False,
        )
        assert "WROTE" not in failed, failed
        assert sorted(p.name for p in readonly.iterdir()) == ["kept.txt"]
    finally:
        envdeck("stop", "mc", timeout=180)
        kill_everything(envdeck_home)
