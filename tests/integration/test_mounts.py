"""Lima ``mounts:`` end to end on the real tiny guest under QEMU: a writable host folder the
guest writes and the host reads (and the other way), a read-only one the guest cannot write
(QEMU's readonly=on, not only the guest's mount option), a mount point with a space, and the
mounts in ``envdeck list --json``."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.integration.instance_helpers import envdeck, kill_everything, list_json

pytestmark = pytest.mark.integration


def test_tiny_guest_mounts_writable_and_read_only_folders(envdeck_home: Path, tmp_path: Path):
    shared, readonly = tmp_path / "shared", tmp_path / "readonly"
    shared.mkdir()
    readonly.mkdir()
    (shared / "from-host.txt").write_text("hello from the host\n")
    (readonly / "kept.txt").write_text("do not touch\n")
    spec = tmp_path / "m.yaml"
    spec.write_text(
        "template: tiny\n"
        "mounts:\n"
        f"  - location: {shared}\n"
        "    mountPoint: /mnt/shared folder\n"
        "    writable: true\n"
        f"  - location: {readonly}\n"
        "    mountPoint: /mnt/ro\n"
    )
    try:
        envdeck("create", "m", "-f", str(spec), check=True, timeout=900)
        started = envdeck("start", "m", timeout=900)
        assert started.returncode == 0, started.stdout + started.stderr

        def guest(script: str, check: bool = True) -> str:
            result = envdeck("exec", "m", "--", "sh", "-c", script, check=check)
            return (result.stdout + (result.stderr if not check else "")).strip()

        assert guest("cat '/mnt/shared folder/from-host.txt'") == "hello from the host"
        guest("echo written by the guest > '/mnt/shared folder/from-guest.txt'")
        assert (shared / "from-guest.txt").read_text() == "written by the guest\n"
        (shared / "later.txt").write_text("after boot\n")
        assert guest("cat '/mnt/shared folder/later.txt'") == "after boot"

        assert guest("cat /mnt/ro/kept.txt") == "do not touch"
        # the guest's own ro option is removed: QEMU still refuses the write
        failed = guest(
            "mount -o remount,rw /mnt/ro 2>&1; echo x > /mnt/ro/new.txt 2>&1 && echo WROTE",
            check=False,
        )
        assert "WROTE" not in failed, failed
        assert not (readonly / "new.txt").exists()
        assert sorted(p.name for p in readonly.iterdir()) == ["kept.txt"]

        mounts = list_json()["m"]["mounts"]
        assert mounts == [
            {
                "location": str(shared),
                "mount_point": "/mnt/shared folder",
                "writable": True,
                "type": "9p",
            },
            {"location": str(readonly), "mount_point": "/mnt/ro", "writable": False, "type": "9p"},
        ]
    finally:
        envdeck("stop", "m", timeout=180)
        kill_everything(envdeck_home)


def test_a_mount_the_guest_cannot_make_leaves_the_instance_degraded_with_why(
    envdeck_home: Path, tmp_path: Path
):
    """The mount point is a file in the guest (/etc/hostname): rcS notes what mount said, the
    agent reads it over SSH, and the instance is degraded naming that share; the good one works."""
    good, bad = tmp_path / "good", tmp_path / "bad"
    good.mkdir()
    bad.mkdir()
    (good / "seen.txt").write_text("seen\n")
    spec = tmp_path / "f.yaml"
    spec.write_text(
        "template: tiny\n"
        "mounts:\n"
        f"  - location: {good}\n    mountPoint: /mnt/good\n"
        f"  - location: {bad}\n    mountPoint: /etc/hostname\n"
    )
    try:
        envdeck("create", "f", "-f", str(spec), check=True, timeout=900)
        started = envdeck("start", "f", timeout=900)
        assert started.returncode == 1, started.stdout + started.stderr
        row = list_json()["f"]
        assert row["state"] == "degraded"
        reason = row["reason"]
        assert reason.startswith("mounts failed in the guest: ")
        assert f"{bad} is not mounted at /etc/hostname (mount1): " in reason
        assert "/mnt/good" not in reason and "exists" in reason.lower()
        assert reason in " ".join(started.stdout.split())  # said by start (wrapped there)
        seen = envdeck("exec", "f", "--", "cat", "/mnt/good/seen.txt", check=True).stdout
        assert seen.strip() == "seen"  # still usable, for debugging
        assert "envdeck: mounting mount1 at /etc/hostname failed" in envdeck("logs", "f").stdout
    finally:
        envdeck("stop", "f", timeout=180)
        kill_everything(envdeck_home)
