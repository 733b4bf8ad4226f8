"""The QEMU argv builder and accel choice are pure: test them without QEMU."""

from __future__ import annotations

from pathlib import Path

import pytest

from envdeck.backend.vm import accel
from envdeck.backend.vm.argv import MachineSpec, build_argv, render_argv


def spec(**over) -> MachineSpec:
    base = dict(
        name="dev",
        arch="x86_64",
        accel="tcg",
        cpus=2,
        memory_bytes=768 << 20,
        kernel=Path("/c/vmlinuz"),
        initrd=Path("/i/initrd.img"),
        cmdline="console=ttyS0 loglevel=0",
        serial_socket=Path("/i/serial.sock"),
        qmp_socket=Path("/i/qmp.sock"),
        ssh_port=40022,
        disk=Path("/i/disk.qcow2"),
    )
    base.update(over)
    return MachineSpec(**base)


def opt(argv: list[str], flag: str) -> list[str]:
    return [argv[i + 1] for i, a in enumerate(argv) if a == flag]


def test_tiny_fast_form():
    argv = build_argv(spec())
    assert argv[0] == "qemu-system-x86_64"
    assert opt(argv, "-M") == ["microvm,acpi=on,rtc=on"]
    assert opt(argv, "-cpu") == ["max"] and opt(argv, "-accel") == ["tcg"]
    assert opt(argv, "-m") == ["768M"] and opt(argv, "-smp") == ["2"]
    assert "virtio-rng-device" in opt(argv, "-device")
    assert "-no-reboot" in argv
    assert opt(argv, "-append") == ["console=ttyS0 loglevel=0"]


def test_ssh_forward_binds_loopback_only():
    (netdev,) = opt(build_argv(spec()), "-netdev")
    assert "hostfwd=tcp:127.0.0.1:40022-:22" in netdev


def test_kvm_uses_host_cpu_and_no_disk_when_absent():
    argv = build_argv(spec(accel="kvm", disk=None, initrd=None))
    assert opt(argv, "-cpu") == ["host"]
    assert "-drive" not in argv and "-initrd" not in argv


def test_render_argv_quotes():
    assert "'console=ttyS0 loglevel=0'" in render_argv(build_argv(spec()))


def test_accel_choice_tcg_requested_and_foreign_arch():
    assert accel.choose("tcg", "x86_64").accel == "tcg"
    choice = accel.choose("auto", "aarch64")
    assert choice.accel == "tcg" and "differs" in choice.why


def test_kvm_verdict_is_remembered_for_this_boot(tmp_path, monkeypatch):
    monkeypatch.setenv("ENVDECK_CACHE", str(tmp_path))
    monkeypatch.setattr(accel, "kvm_usable", lambda: (True, "ok"))
    probes = []
    monkeypatch.setattr(accel, "probe", lambda a: probes.append(a))  # works: returns None
    assert accel.choose("auto", "x86_64").accel == "kvm"
    assert accel.choose("auto", "x86_64").accel == "kvm"
    assert probes == ["kvm"]  # probed once per host boot, the good verdict remembered
    accel.record_verdict("kvm", "no guest output within 5 s")
    choice = accel.choose("auto", "x86_64")
    assert choice.accel == "tcg" and "no guest output" in choice.why


def test_a_failed_kvm_probe_means_tcg_at_once_and_is_remembered(tmp_path, monkeypatch):
    monkeypatch.setenv("ENVDECK_CACHE", str(tmp_path))
    monkeypatch.setattr(accel, "kvm_usable", lambda: (True, "ok"))
    monkeypatch.setattr(accel, "probe", lambda a: "QEMU failed with kvm (failed to set MSR)")
    choice = accel.choose("auto", "x86_64")
    assert choice.accel == "tcg" and "failed to set MSR" in choice.why
    monkeypatch.setattr(accel, "probe", lambda a: pytest.fail("probed twice"))
    assert "seen earlier" in accel.choose("auto", "x86_64").why
