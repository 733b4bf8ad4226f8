"""CPU architecture names, in one table.

Two spellings name the same machine: the kernel/QEMU one (``uname -m``, ``qemu-<arch>``,
ELF headers: x86_64, aarch64, arm, i386) and the Docker/Go one (image platforms, ``GOARCH``:
amd64, arm64, arm, 386). Other tools add aliases (x86-64, armv7l, armhf, i686, ppc64el).
:func:`qemu_arch` and :func:`docker_arch` turn any of them into one spelling; names not in the
table pass through lower-cased.
"""

from __future__ import annotations

import platform

#: kernel/QEMU name -> Docker/Go name.
DOCKER_NAMES: dict[str, str] = {
    "x86_64": "amd64",
    "aarch64": "arm64",
    "arm": "arm",
    "i386": "386",
    "ppc64le": "ppc64le",
    "ppc64": "ppc64",
    "s390x": "s390x",
    "riscv64": "riscv64",
    "mips64el": "mips64le",
    "mips64": "mips64",
    "mipsel": "mipsle",
    "mips": "mips",
    "loongarch64": "loong64",
}

#: Any other spelling (Docker/Go names included) -> kernel/QEMU name.
ALIASES: dict[str, str] = {
    **{docker: qemu for qemu, docker in DOCKER_NAMES.items()},
    "x86-64": "x86_64",
    "armv7l": "arm",
    "armv6l": "arm",
    "armhf": "arm",
    "armel": "arm",
    "i486": "i386",
    "i586": "i386",
    "i686": "i386",
    "ppc64el": "ppc64le",
}


def qemu_arch(name: str) -> str:
    """The kernel/QEMU spelling: ``amd64`` -> ``x86_64``, ``armv7l`` -> ``arm``."""
    lowered = name.lower()
    return ALIASES.get(lowered, lowered)


def docker_arch(name: str) -> str:
    """The Docker/Go spelling: ``x86_64`` -> ``amd64``, ``i686`` -> ``386``."""
    canonical = qemu_arch(name)
    return DOCKER_NAMES.get(canonical, canonical)


def host_arch() -> str:
    """This machine's architecture, kernel/QEMU spelling (``x86_64``, ``aarch64``, ...)."""
    return qemu_arch(platform.machine())
