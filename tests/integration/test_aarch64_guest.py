"""The foreign-arch scene: an aarch64 tiny guest (QEMU TCG, -M virt) on this x86_64 host runs an
x86_64 busybox through qemu-x86_64-static (binfmt_misc, F flag); its guest tree shows it
emulated. Real QEMU, real Debian arm64 packages (the image cache is shared across runs)."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from envdeck.backend.processes.emulation import elf_arch
from envdeck.backend.store import InstanceDir
from tests.conftest import require, require_tool
from tests.integration.instance_helpers import envdeck, kill_everything, list_json, wait_for

pytestmark = pytest.mark.integration
HOST_BUSYBOX = Path("/bin/busybox")  # busybox-static: x86_64, static


@pytest.fixture(scope="module")
def a1(tmp_path_factory: pytest.TempPathFactory):
    """One running aarch64 tiny instance for the module; stopped and removed afterwards."""
    require_tool("qemu-system-aarch64", "qemu-img", "apt-get", "dpkg-deb")
    require(
        HOST_BUSYBOX.is_file() and elf_arch(HOST_BUSYBOX.read_bytes()[:64]) == "x86_64",
        "an x86_64 /bin/busybox (busybox-static)",
    )
    mp = pytest.MonkeyPatch()
    home = tmp_path_factory.mktemp("a64") / "envdeck-home"
    mp.setenv("ENVDECK_HOME", str(home))
    mp.setenv("ENVDECK_CACHE", str(Path.home() / ".cache" / "envdeck-test-cache"))
    try:
        envdeck("create", "a1", "--arch", "aarch64", "--memory", "512MiB", check=True, timeout=900)
        envdeck("start", "a1", check=True, timeout=600)
        yield "a1"
    finally:
        envdeck("stop", "a1", timeout=120)
        kill_everything(home)
        mp.undo()


def test_listed_as_an_emulated_foreign_arch_guest(a1):
    row = list_json()[a1]
    assert (row["state"], row["arch"], row["accel"], row["foreign_arch"]) == (
        "ready",
        "aarch64",
        "tcg",
        True,
    )
    argv = InstanceDir.existing(a1).read_state()["qemu_argv"]
    assert argv[0].endswith("qemu-system-aarch64") and "virt" in argv
    assert argv[argv.index("-cpu") + 1] == "cortex-a57"


def test_the_guest_is_aarch64_with_qemu_x86_64_registered(a1):
    assert envdeck("exec", a1, "--", "uname", "-m", check=True).stdout.strip() == "aarch64"
    handlers = json.loads(envdeck("binfmt", "--instance", a1, "--json", check=True).stdout)
    x86 = [h for h in handlers["handlers"] if h["name"] == "qemu-x86_64"]
    assert x86 and x86[0]["interpreter"] == "/usr/bin/qemu-x86_64-static"
    assert "F" in x86[0]["flags"] and x86[0]["enabled"]


def test_copy_both_ways_keeps_bytes_and_mode(a1, tmp_path: Path):
    out = envdeck("copy", str(HOST_BUSYBOX), f"{a1}:/tmp/", check=True).stdout
    assert "copied" in out
    listing = envdeck("exec", a1, "--", "ls", "-ln", "/tmp/busybox", check=True).stdout
    assert listing.startswith("-rwxr-xr-x") and str(HOST_BUSYBOX.stat().st_size) in listing
    back = tmp_path / "busybox.back"
    envdeck("copy", f"{a1}:/tmp/busybox", str(back), check=True)
    assert back.read_bytes() == HOST_BUSYBOX.read_bytes()
    assert stat.S_IMODE(back.stat().st_mode) == 0o755
    missing = envdeck("copy", f"{a1}:/no/such/file", str(tmp_path / "x"))
    assert missing.returncode != 0 and "not a regular file" in missing.stderr
    assert not (tmp_path / "x").exists()
    both = envdeck("copy", str(HOST_BUSYBOX), str(tmp_path / "y"))
    assert both.returncode != 0 and "exactly one side" in both.stderr


def test_an_x86_64_program_and_its_child_show_emulated_in_the_guest_tree(a1):
    envdeck("copy", str(HOST_BUSYBOX), f"{a1}:/tmp/busybox", check=True)
    assert envdeck("exec", a1, "--", "/tmp/busybox", "uname", "-m", check=True).stdout == "x86_64\n"
    start = "/tmp/busybox sh -c '/tmp/busybox sleep 1001 & /tmp/busybox sleep 1002' "
    envdeck("exec", a1, "--", "sh", "-c", start + "</dev/null >/dev/null 2>&1 &", check=True)

    def emulated_rows() -> dict[str, dict] | None:
        out = envdeck("ps", "--instance", a1, "--emulated", "--json", check=True).stdout
        rows = {" ".join(r["emulated"]["argv"]): r for r in json.loads(out)}
        return rows if {"/tmp/busybox sleep 1001", "/tmp/busybox sleep 1002"} <= set(rows) else None

    rows = wait_for(emulated_rows, timeout=60, interval=1)
    parent, child = rows["/tmp/busybox sleep 1002"], rows["/tmp/busybox sleep 1001"]
    for row in (parent, child):
        assert row["emulated"]["arch"] == "x86_64"
        assert row["emulated"]["interpreter"] == "/usr/bin/qemu-x86_64-static"
        assert row["emulated"]["program"] == "/tmp/busybox"
    assert child["ppid"] == parent["pid"]
    table = envdeck("ps", "--instance", a1, "--emulated", check=True).stdout
    assert "[x86_64] /tmp/busybox sleep 1001" in table
    envdeck("exec", a1, "--", "sh", "-c", "kill $(pidof qemu-x86_64-static) 2>/dev/null; true")
