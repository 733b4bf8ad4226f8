"""A full disk (issue #10 item 15): with events.jsonl and serial.log on a full filesystem the
agent keeps sending every event to its clients, turns the instance ``degraded`` with the reason
"disk full", recovers when space returns, and still sees QEMU's exit.

The instance lives on a small tmpfs mounted by the test (root only), filled to the last byte.
"""

from __future__ import annotations

import contextlib
import errno
import os
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import require, require_tool
from tests.integration.instance_helpers import envdeck, kill_everything, list_json, wait_for

pytestmark = pytest.mark.integration


@pytest.fixture
def small_home(envdeck_home: Path) -> Iterator[Path]:
    """ENVDECK_HOME on a 64 MiB tmpfs of its own."""
    require(os.geteuid() == 0, "root (to mount a small tmpfs)")
    require_tool("qemu-system-x86_64", "qemu-img", "mount")
    envdeck_home.mkdir(parents=True)
    subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=64m,mode=0700", "tmpfs", str(envdeck_home)],
        check=True,
    )
    try:
        yield envdeck_home
    finally:
        kill_everything(envdeck_home)
        subprocess.run(["umount", "-l", str(envdeck_home)], check=False)


def fill(directory: Path) -> Path:
    """Write a file until the filesystem has no room left."""
    filler = directory / "filler"
    chunk = b"\0" * (1 << 16)
    with open(filler, "wb", buffering=0) as out:
        with contextlib.suppress(OSError):
            while True:
                out.write(chunk)
        with contextlib.suppress(OSError):  # the last few bytes
            while True:
                out.write(b"\0")
    probe = directory / "probe"
    with pytest.raises(OSError) as full:
        probe.write_bytes(b"x" * 4096)
    assert full.value.errno == errno.ENOSPC
    return filler


def test_a_full_disk_degrades_keeps_events_flowing_and_recovers(small_home: Path):
    envdeck("create", "df", "--memory", "256MiB", check=True, timeout=900)
    envdeck("start", "df", check=True)
    assert list_json()["df"]["state"] == "ready"

    filler = fill(small_home)
    # The guest writes to its console (serial.log) and a forward is added (events.jsonl):
    # more than the slack left in the files' last pages.
    flood = "i=0; while [ $i -lt 3000 ]; do echo console-line-$i > /dev/console; i=$((i+1)); done"
    envdeck("exec", "df", "--", "sh", "-c", flood, check=True, timeout=120)
    added = envdeck("forward", "df", "add", "18080")
    assert added.returncode == 0, added.stderr  # (the forward works; saving it said disk full)
    row = wait_for(lambda: (r := list_json()["df"])["state"] == "degraded" and r, 15)
    assert row["reason"].startswith("disk full"), row

    filler.unlink()
    wait_for(lambda: list_json()["df"]["state"] == "ready", 15)
    note = (small_home / "instances" / "df" / "events.jsonl").read_text()
    assert "ready" in note

    # Full again, then QEMU dies: the agent must notice (no hang) and end the instance.
    filler = fill(small_home)
    pid = list_json()["df"]["pid"]
    os.kill(pid, signal.SIGKILL)
    row = wait_for(lambda: (r := list_json()["df"])["state"] == "crashed" and r, 15)
    assert "SIGKILL" in (row["reason"] or "")
    agent = small_home / "instances" / "df" / "agent.sock"
    wait_for(lambda: not agent.exists(), 15)  # the agent ended, it did not hang
    filler.unlink()
