"""Real emulated processes: qemu-aarch64-static by hand, binfmt_misc with and without P, and an
arm64 container under dockerd. The aarch64 busybox comes from .ci/setup.d/20-emulation.sh."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
import uuid
from pathlib import Path

import pytest

from envdeck.backend.processes import binfmt
from envdeck.backend.processes.host import HostScanner, snapshot
from tests.conftest import require, require_tool

pytestmark = pytest.mark.integration

BUSYBOX = Path("/opt/envdeck-test/arm64/busybox")
BINFMT = Path("/proc/sys/fs/binfmt_misc")
MASK = (
    "\\xff\\xff\\xff\\xff\\xff\\xff\\xff\\x00\\xff\\xff"
    "\\xff\\xff\\xff\\xff\\xff\\xff\\xfe\\xff\\xff\\xff"
)


def need_busybox() -> None:
    require(BUSYBOX.exists(), f"aarch64 busybox at {BUSYBOX} (.ci/setup.d/20-emulation.sh)")
    require_tool("qemu-aarch64-static")


def need_binfmt() -> None:
    need_busybox()
    require((BINFMT / "qemu-aarch64").exists(), "binfmt_misc with qemu-aarch64 registered")


def wait_row(pid: int, scanner: HostScanner | None = None, timeout: float = 10.0) -> dict:
    """The row of ``pid`` once it runs the emulated program (after exec, QEMU started)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        snap = scanner.scan() if scanner else snapshot()
        proc = snap.procs.get(pid)
        if proc is not None and proc.static.emulated is not None:
            return proc.row()
        time.sleep(0.1)
    raise AssertionError(f"pid {pid} never showed up as emulated")


def run(argv: list[str], cwd: str | None = None) -> subprocess.Popen:
    return subprocess.Popen(argv, cwd=cwd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)


def stop(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)


def test_qemu_by_hand_is_detected():
    need_busybox()
    proc = run(["qemu-aarch64-static", str(BUSYBOX), "sleep", "30"])
    try:
        row = wait_row(proc.pid)
    finally:
        stop(proc)
    emu = row["emulated"]
    assert emu["arch"] == "aarch64" and emu["arch_source"] == "elf"
    assert emu["program"] == str(BUSYBOX)
    assert emu["argv"] == [str(BUSYBOX), "sleep", "30"]
    assert row["name"].startswith("qemu-aarch64")


def test_binfmt_registered_handler_is_detected():
    need_binfmt()
    handler = binfmt.parse_entry("qemu-aarch64", (BINFMT / "qemu-aarch64").read_text())
    require("F" in handler.flags, "qemu-aarch64 registered with flag F")
    proc = run([str(BUSYBOX), "sleep", "31"])
    try:
        row = wait_row(proc.pid)
    finally:
        stop(proc)
    emu = row["emulated"]
    assert emu["arch"] == "aarch64" and emu["interpreter"] == handler.interpreter
    assert emu["program"] == str(BUSYBOX)
    assert emu["preserve_argv0"] == handler.preserve_argv0
    assert emu["argv"][1:] == ["sleep", "31"]
    assert row["name"] == "busybox"  # comm hides the emulation; the scanner does not


@pytest.fixture
def marked_busybox(tmp_path):
    """Register a test-only handler matching only a marked copy of the busybox; remove it after.

    Byte 15 of the ELF header (EI_PAD, ignored by loaders) is set to a value the real handlers'
    mask rejects, so no other process on the machine is affected by the test handler.
    """
    need_binfmt()
    require(os.geteuid() == 0, "root (to register binfmt handlers)")
    registered: list[str] = []

    def make(flags: str, interpreter: str, tag: int) -> Path:
        data = bytearray(BUSYBOX.read_bytes())
        data[15] = tag
        prog = tmp_path / f"v{tag:02x}" / "busybox"
        prog.parent.mkdir()
        prog.write_bytes(bytes(data))
        prog.chmod(0o755)
        name = f"envdeck-test-{uuid.uuid4().hex[:8]}"
        head = bytes([0x7F, 0x45, 0x4C, 0x46, 2, 1, 1, 0] + [0] * 7 + [tag, 2, 0, 0xB7, 0])
        magic = "".join(f"\\x{b:02x}" for b in head)
        binfmt.write_register(binfmt.register_line(name, magic, MASK, interpreter, flags))
        registered.append(name)
        return prog

    yield make
    for name in registered:
        binfmt.unregister(name)
        assert not (BINFMT / name).exists()


@pytest.mark.parametrize("flags", ["F", "PF"])
def test_binfmt_with_and_without_p(marked_busybox, flags):
    prog = marked_busybox(flags, shutil.which("qemu-aarch64-static"), 0x51 + len(flags))
    scanner = HostScanner()  # a new scanner reads the registry (for the P flag) now
    proc = run(["./busybox", "sleep", "32"], cwd=str(prog.parent))
    try:
        row = wait_row(proc.pid, scanner)
    finally:
        stop(proc)
    emu = row["emulated"]
    assert emu["arch"] == "aarch64" and emu["arch_source"] == "elf"  # read via /proc/PID/cwd
    assert emu["program"] == "./busybox"  # the kernel passes the path as given to execve
    if "P" in flags:
        assert row["cmdline"][2] == "./busybox"
        assert emu["preserve_argv0"] and emu["argv"] == ["./busybox", "sleep", "32"]
    else:
        assert not emu["preserve_argv0"] and emu["argv"] == ["./busybox", "sleep", "32"]
        assert len(row["cmdline"]) == 4  # [interpreter, path, sleep, 32]: argv0 dropped


def test_p_flag_through_an_interpreter_named_otherwise(marked_busybox, tmp_path):
    link = tmp_path / "my-emulator"
    link.symlink_to(shutil.which("qemu-aarch64-static"))
    prog = marked_busybox("PF", str(link), 0x5A)
    proc = run([str(prog), "sleep", "33"])
    try:
        row = wait_row(proc.pid, HostScanner())
    finally:
        stop(proc)
    emu = row["emulated"]
    assert emu["interpreter"] == str(link) and emu["preserve_argv0"]
    assert emu["argv"] == [str(prog), "sleep", "33"]


def test_arm64_container_is_attributed_and_emulated():
    """An arm64 container under dockerd (images made by the containers tests' helper)."""
    need_binfmt()
    from tests.integration.docker_images import ARM64, docker_client_or_skip

    docker_client_or_skip().close()  # a running daemon with both test images, or skip/fail
    require_tool("docker")
    name = f"envdeck-ps-{uuid.uuid4().hex[:8]}"
    subprocess.run(
        [
            "docker",
            "run",
            "-d",
            "--rm",
            "--name",
            name,
            "--platform",
            "linux/arm64",
            ARM64,
            "sleep",
            "300",
        ],
        check=True,
        capture_output=True,
    )
    try:
        deadline = time.monotonic() + 20
        scanner = HostScanner()
        rows: list[dict] = []
        while time.monotonic() < deadline:
            rows = [r for r in scanner.scan().rows() if r["container"] == name]
            if any(r["emulated"] for r in rows):
                break
            time.sleep(0.3)
        sleeper = next(r for r in rows if r["emulated"])
        assert sleeper["emulated"]["arch"] == "aarch64"
        assert sleeper["emulated"]["argv"][-2:] == ["sleep", "300"]
        cost = scanner.scan().summary()["by_container"][name]
        assert cost["emulated"] >= 1
    finally:
        subprocess.run(["docker", "rm", "-f", name], capture_output=True)
