"""The aarch64 tiny guest's recipe and the Debian arm64 plumbing (no QEMU; apt where said)."""

from __future__ import annotations

import shutil

import pytest

from envdeck.backend.errors import EnvdeckError, UserInputError
from envdeck.backend.images import debs
from envdeck.backend.images import tiny as images_tiny
from envdeck.backend.images.debs import Deb
from envdeck.backend.images.rootfs import guest_files
from envdeck.backend.images.tinyarch import RECIPES, tiny_arch
from envdeck.backend.vm.argv import MachineSpec, build_argv

AARCH64 = RECIPES["aarch64"]


def test_recipes_differ_where_the_arch_does():
    x86 = tiny_arch("x86_64")
    assert (AARCH64.deb_arch, AARCH64.lib_dir) == ("arm64", "lib/aarch64-linux-gnu")
    assert AARCH64.cmdline.split()[0] == "console=ttyAMA0" and "edd=off" not in AARCH64.cmdline
    assert x86.cmdline == "console=ttyS0 loglevel=5 panic=-1 reboot=t edd=off"
    assert all(p.endswith(":arm64") for p in AARCH64.packages)
    assert AARCH64.emulates == ("x86_64",) and x86.emulates == ()
    with pytest.raises(UserInputError, match="not riscv64"):
        tiny_arch("riscv64")


def test_the_aarch64_guest_registers_qemu_x86_64_with_f_before_rcs():
    files = guest_files(AARCH64)
    inittab = files["inittab"].decode().splitlines()
    assert inittab.index("::sysinit:/etc/envdeck/binfmt-x86_64") + 1 == inittab.index(
        "::sysinit:/etc/envdeck/rcS"
    )
    script = files["binfmt-x86_64"].decode()
    assert "modprobe binfmt_misc" in script
    register = next(line for line in script.splitlines() if ":qemu-x86_64:M::" in line)
    assert register.split("'")[3].endswith(":/usr/bin/qemu-x86_64-static:F")
    assert guest_files() == guest_files(tiny_arch("x86_64"))  # x86_64 unchanged
    assert "binfmt-x86_64" not in guest_files()


def test_digests_of_the_two_arches_differ_and_x86_64_keeps_its_form():
    packages = [Deb("busybox-static", "1", "arm64", "0" * 64, 1)]
    x86 = images_tiny.recipe_digest(packages, tiny_arch("x86_64"))
    assert x86 == images_tiny.compute_digest(packages, guest_files())
    assert images_tiny.recipe_digest(packages, AARCH64) != x86


def test_deb_spec_names_the_architecture():
    assert Deb("libc6", "2.36", "arm64", "0", 1).spec == "libc6:arm64=2.36"
    assert Deb("libtirpc-common", "1.3", "all", "0", 1).spec == "libtirpc-common=1.3"
    assert debs.bare("libc6:arm64") == "libc6" and debs.bare("libc6") == "libc6"


def test_aarch64_argv_boots_virt_with_the_fast_cpu_or_the_configured_one(tmp_path):
    spec = MachineSpec(
        "a1", "aarch64", "tcg", 2, 512 << 20, tmp_path / "vmlinuz", tmp_path / "initrd.img",
        AARCH64.cmdline, tmp_path / "serial.sock", tmp_path / "qmp.sock", 2222,
    )  # fmt: skip
    argv = build_argv(spec)
    assert argv[0] == "qemu-system-aarch64"
    assert argv[argv.index("-M") + 1] == "virt"
    assert argv[argv.index("-cpu") + 1] == "cortex-a57"
    assert "virtio-net-device,netdev=net0" in argv
    mine = build_argv(MachineSpec(**{**spec.__dict__, "cpu": "max,pauth-impdef=on"}))
    assert mine[mine.index("-cpu") + 1] == "max,pauth-impdef=on"
    x86 = build_argv(MachineSpec(**{**spec.__dict__, "arch": "x86_64"}))
    assert x86[x86.index("-M") + 1] == "microvm,acpi=on,rtc=on"
    assert x86[x86.index("-cpu") + 1] == "max"


def test_an_architecture_apt_cannot_fetch_says_how_to_enable_it():
    if not shutil.which("dpkg"):
        pytest.skip("needs dpkg")
    with pytest.raises(EnvdeckError) as caught:
        debs.require_architecture("s390x")
    assert "s390x" in caught.value.message
    assert caught.value.hint == "sudo dpkg --add-architecture s390x && sudo apt-get update"


def test_a_missing_package_is_one_error_naming_it(monkeypatch, tmp_path):
    if not shutil.which("apt-cache"):
        pytest.skip("needs apt-cache")
    monkeypatch.setenv("ENVDECK_CACHE", str(tmp_path))
    broken = AARCH64.__class__(
        **{**AARCH64.__dict__, "packages": (*AARCH64.packages, "envdeck-no-such-pkg:arm64")}
    )
    monkeypatch.setitem(RECIPES, "aarch64", broken)
    with pytest.raises(EnvdeckError, match="envdeck-no-such-pkg"):
        images_tiny.build_tiny(None, "aarch64")
    kernel = AARCH64.__class__(**{**AARCH64.__dict__, "kernel_meta": "linux-image-nope:arm64"})
    monkeypatch.setitem(RECIPES, "aarch64", kernel)
    with pytest.raises(EnvdeckError, match="linux-image-nope"):
        images_tiny.build_tiny(None, "aarch64")
