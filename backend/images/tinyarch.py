"""What differs between the tiny guests of two architectures: Debian architecture, kernel and
packages, library directory, kernel modules, console, and the extra boot steps of a guest that
runs another architecture's programs (the aarch64 guest registers ``qemu-x86_64-static`` in its
binfmt_misc, as qus does on Apple Silicon)."""

from __future__ import annotations

from dataclasses import dataclass, field

from envdeck.backend.errors import UserInputError

#: kernel modules every tiny guest loads at boot (their dependencies are added from .modinfo)
#: the kernel's console level: messages below it reach the serial console (5: warnings, errors
#: and worse; 0 showed nothing, so a failing driver or a panic's cause was invisible)
CONSOLE_LOGLEVEL = 5
COMMON_MODULES = (
    "virtio_mmio", "virtio_pci", "virtio_net", "virtio_blk", "virtio_rng",
    "button", "evdev", "ext4", "crc32c_generic",
)  # fmt: skip
#: shipped in every tiny guest, loaded by rcS when the instance has mounts: (virtio-9p)
NINEP_MODULES = ("9pnet_virtio", "9p")
#: binaries every tiny guest takes from its packages: archive path -> path in the guest
COMMON_BINARIES = {
    "bin/busybox": "bin/busybox",
    "usr/sbin/dropbear": "usr/sbin/dropbear",
    "usr/bin/dropbearkey": "usr/bin/dropbearkey",
    "usr/bin/dropbearconvert": "usr/bin/dropbearconvert",
    "usr/bin/socat": "usr/bin/socat",
}
#: socat carries guest unix sockets over SSH (dropbear has no streamlocal forwarding)
COMMON_PACKAGES = ("busybox-static", "dropbear-bin", "socat")


@dataclass(frozen=True)
class TinyArch:
    """One architecture's recipe for the tiny guest."""

    arch: str  # envdeck's name (uname -m)
    deb_arch: str  # Debian's name
    kernel_meta: str  # the kernel metapackage apt resolves
    packages: tuple[str, ...]  # packages whose files go in (their libraries are added)
    lib_dir: str  # the multiarch library directory
    console: str  # the serial console's device
    modules: tuple[str, ...] = COMMON_MODULES  # loaded by rcS at boot
    on_demand: tuple[str, ...] = NINEP_MODULES  # shipped, loaded when needed (modprobe)
    binaries: dict[str, str] = field(default_factory=lambda: dict(COMMON_BINARIES))
    #: extra guest scripts (name in images/guest -> path in the guest), each run by busybox
    #: init as a sysinit step before rcS (so before sshd answers)
    boot_steps: dict[str, str] = field(default_factory=dict)

    @property
    def cmdline(self) -> str:
        """The kernel command line: serial console showing the kernel's warnings and errors
        (``loglevel=5``: what went wrong in a boot is on the console; its cost is measured in
        tests/benchmarks/test_bench_console.py), at once to QEMU on a panic (``panic=-1`` +
        ``-no-reboot``); x86 adds its reboot type and no EDD probing."""
        line = f"console={self.console} loglevel={CONSOLE_LOGLEVEL} panic=-1"
        return line + " reboot=t edd=off" if self.arch == "x86_64" else line

    @property
    def emulates(self) -> tuple[str, ...]:
        """The foreign arches this guest runs programs of (through binfmt_misc)."""
        return tuple(
            dest.removeprefix("usr/bin/qemu-").removesuffix("-static")
            for dest in self.binaries.values()
            if dest.startswith("usr/bin/qemu-")
        )


RECIPES = {
    "x86_64": TinyArch(
        arch="x86_64",
        deb_arch="amd64",
        kernel_meta="linux-image-amd64",
        packages=COMMON_PACKAGES,
        lib_dir="lib/x86_64-linux-gnu",
        console="ttyS0",
    ),
    "aarch64": TinyArch(
        arch="aarch64",
        deb_arch="arm64",
        kernel_meta="linux-image-arm64:arm64",
        packages=tuple(f"{p}:arm64" for p in (*COMMON_PACKAGES, "qemu-user-static")),
        lib_dir="lib/aarch64-linux-gnu",
        console="ttyAMA0",
        # virt's power button is a GPIO key (system_powerdown -> KEY_POWER -> busybox acpid)
        modules=(*COMMON_MODULES, "gpio_keys"),
        on_demand=("binfmt_misc", *NINEP_MODULES),
        binaries={
            **COMMON_BINARIES,
            "usr/bin/qemu-x86_64-static": "usr/bin/qemu-x86_64-static",
        },
        boot_steps={"binfmt-x86_64": "etc/envdeck/binfmt-x86_64"},
    ),
}


def tiny_arch(arch: str) -> TinyArch:
    """The recipe for ``arch``; a clear error for an arch the tiny guest is not built for."""
    try:
        return RECIPES[arch]
    except KeyError:
        raise UserInputError(
            f"the tiny template is built for {', '.join(RECIPES)}, not {arch}"
        ) from None
