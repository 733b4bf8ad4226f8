"""Emulated-process detection: interpreter names, P / no-P command lines, ELF arch."""

from __future__ import annotations

import os
import sys

import pytest

from envdeck.backend.processes.emulation import (
    detect,
    elf_arch,
    interpreter_arch,
    read_elf_arch,
    resolve_in_root,
)

QEMU = "/usr/bin/qemu-aarch64-static"


def elf_header(ei_class: int, ei_data: int, machine: int) -> bytes:
    order = "little" if ei_data == 1 else "big"
    head = bytes([0x7F, 0x45, 0x4C, 0x46, ei_class, ei_data, 1, 0]) + bytes(8)
    return head + (2).to_bytes(2, order) + machine.to_bytes(2, order)


@pytest.mark.parametrize(
    ("path", "arch"),
    [
        ("/usr/bin/qemu-aarch64-static", "aarch64"),
        ("/usr/bin/qemu-riscv64", "riscv64"),
        ("/usr/libexec/qemu-binfmt/arm-binfmt-P", "arm"),
        ("/qus/bin/qemu-ppc64le-static", "ppc64le"),
        ("/usr/bin/qemu-x86_64-static (deleted)", "x86_64"),
        ("/mnt/rosetta/rosetta", "x86_64"),
        ("/usr/bin/qemu-system-x86_64", None),
        ("/usr/bin/qemu-img", None),
        ("/usr/bin/qemu-nbd", None),
        ("/usr/bin/python3", None),
        (None, None),
    ],
)
def test_interpreter_arch(path, arch):
    assert interpreter_arch(path) == arch


def test_binfmt_with_p_flag_strips_interpreter_and_full_path():
    emu = detect(QEMU, ["/usr/libexec/qemu-binfmt/aarch64-binfmt-P", "/guest/ls", "ls", "-l"])
    assert emu is not None
    assert (emu["arch"], emu["program"], emu["argv"]) == ("aarch64", "/guest/ls", ["ls", "-l"])
    assert emu["interpreter"] == "/usr/libexec/qemu-binfmt/aarch64-binfmt-P"


def test_binfmt_without_p_flag_keeps_the_full_path_as_argv0():
    emu = detect(QEMU, [QEMU, "/guest/ls", "-l"])
    assert emu is not None
    assert (emu["program"], emu["argv"], emu["preserve_argv0"]) == (
        "/guest/ls",
        ["/guest/ls", "-l"],
        False,
    )


def test_p_flag_known_only_from_the_registry():
    cmd = ["/tmp/interp", "./prog", "prog", "x"]
    emu = detect(QEMU, cmd, preserve_argv0={"/tmp/interp": True})
    assert emu is not None
    assert (emu["interpreter"], emu["program"], emu["argv"]) == (
        "/tmp/interp",
        "./prog",
        ["prog", "x"],
    )


def test_by_hand_with_options():
    emu = detect(QEMU, ["qemu-aarch64-static", "-L", "/sysroot", "-cpu", "max", "./prog", "a"])
    assert emu is not None
    assert (emu["program"], emu["argv"]) == ("./prog", ["./prog", "a"])


def test_exe_unreadable_still_detected_by_argv0():
    emu = detect(None, ["/qus/bin/qemu-riscv64-static", "/app", "serve"])
    assert emu is not None and emu["arch"] == "riscv64" and emu["program"] == "/app"


def test_native_processes_are_not_emulated():
    assert detect("/usr/bin/python3", ["python3", "x.py"]) is None
    assert detect("/usr/bin/qemu-system-x86_64", ["qemu-system-x86_64", "-m", "1G"]) is None
    assert detect(None, []) is None


def test_elf_arch_from_headers():
    assert elf_arch(elf_header(2, 1, 183)) == "aarch64"
    assert elf_arch(elf_header(2, 2, 22)) == "s390x"
    assert elf_arch(elf_header(1, 1, 243)) == "riscv32"
    assert elf_arch(elf_header(1, 2, 40)) == "armeb"
    assert elf_arch(b"#!/bin/sh\n" + bytes(20)) is None
    assert elf_arch(b"\x7fELF") is None


def test_elf_arch_confirms_and_overrides_the_interpreter_name(tmp_path):
    prog = tmp_path / "prog"
    prog.write_bytes(elf_header(2, 1, 243) + bytes(64))
    emu = detect(QEMU, [QEMU, str(prog)])
    assert emu is not None and emu["arch"] == "riscv64" and emu["arch_source"] == "elf"
    rel = detect(QEMU, [QEMU, "prog"], cwd=str(tmp_path))
    assert rel is not None and rel["arch"] == "riscv64"


def test_read_elf_arch_of_this_python_and_never_blocks_on_a_fifo(tmp_path):
    machine = os.uname().machine
    assert read_elf_arch(os.path.realpath(sys.executable)) == {"amd64": "x86_64"}.get(
        machine, machine
    )
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    assert read_elf_arch(str(fifo)) is None


def test_absolute_links_resolve_inside_the_process_root(tmp_path):
    """/bin/sleep -> /bin/busybox in a container must not land on the host's /bin/busybox."""
    root = tmp_path / "rootfs"
    (root / "bin").mkdir(parents=True)
    (root / "bin" / "busybox").write_bytes(elf_header(2, 1, 183) + bytes(64))
    (root / "bin" / "sleep").symlink_to("/bin/busybox")
    (root / "usr").symlink_to("/")  # a loop-ish absolute link: still resolved inside root
    assert resolve_in_root("/bin/sleep", str(root)) == str(root / "bin" / "busybox")
    assert resolve_in_root("/usr/usr/bin/../bin/sleep", str(root)) == str(root / "bin" / "busybox")
    assert read_elf_arch("/bin/sleep", str(root)) == "aarch64"
    assert resolve_in_root("relative", None) is None
