"""The one architecture name table: kernel/QEMU names, Docker/Go names and their aliases."""

from __future__ import annotations

import platform

import pytest

from envdeck.backend.arch import ALIASES, DOCKER_NAMES, docker_arch, host_arch, qemu_arch


@pytest.mark.parametrize(
    ("name", "qemu", "docker"),
    [
        ("x86_64", "x86_64", "amd64"),
        ("amd64", "x86_64", "amd64"),
        ("x86-64", "x86_64", "amd64"),
        ("AMD64", "x86_64", "amd64"),
        ("aarch64", "aarch64", "arm64"),
        ("arm64", "aarch64", "arm64"),
        ("armv7l", "arm", "arm"),
        ("armv6l", "arm", "arm"),
        ("armhf", "arm", "arm"),
        ("i686", "i386", "386"),
        ("386", "i386", "386"),
        ("ppc64el", "ppc64le", "ppc64le"),
        ("mips64le", "mips64el", "mips64le"),
        ("loong64", "loongarch64", "loong64"),
        ("s390x", "s390x", "s390x"),
        ("riscv64", "riscv64", "riscv64"),
    ],
)
def test_every_spelling_normalises_to_both_forms(name: str, qemu: str, docker: str) -> None:
    assert qemu_arch(name) == qemu
    assert docker_arch(name) == docker


def test_unknown_names_pass_through_lower_cased() -> None:
    assert qemu_arch("Sparc64") == "sparc64"
    assert docker_arch("Sparc64") == "sparc64"


def test_the_two_spellings_round_trip() -> None:
    for qemu, docker in DOCKER_NAMES.items():
        assert qemu_arch(docker) == qemu
        assert docker_arch(qemu) == docker


def test_aliases_point_at_kernel_names() -> None:
    assert set(ALIASES.values()) <= set(DOCKER_NAMES)


def test_host_arch_is_this_machine_in_kernel_spelling() -> None:
    assert host_arch() == qemu_arch(platform.machine())
    assert host_arch() in DOCKER_NAMES
