"""QEMU command lines: a pure function from an instance's machine spec to argv.

Testable without QEMU. Paths inside QEMU option values go through :func:`opt_value` (a ``,``
in a value must be doubled, or QEMU reads it as the start of the next option).

The tiny guest uses the fast form measured on our machines: ``-M microvm``, ``-cpu max``, a
kernel console with warnings and errors only, and virtio-rng (8 s to sshd under TCG vs 12.5 s
with q35 defaults). An aarch64 guest boots on ``-M virt`` (virtio-mmio devices, the PL011 serial)
with ``-cpu cortex-a57`` under TCG: ``max`` emulates pointer authentication, which is costly
(measured to sshd on a 2-core x86_64 host, see TCG_CPU). Cloud images boot with UEFI firmware
on a PCIe machine: q35 with OVMF on x86_64, virt with AAVMF on aarch64 (PCI virtio devices on both).
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from pathlib import Path

from envdeck.backend.vm.mounts import Share, mount_argv

QEMU_BINARIES = {"x86_64": "qemu-system-x86_64", "aarch64": "qemu-system-aarch64"}
#: the kernel-booting machine type per guest arch
KERNEL_MACHINES = {"x86_64": "microvm,acpi=on,rtc=on", "aarch64": "virt"}
#: the machine type UEFI firmware boots a cloud image on, per guest arch (both have PCIe)
UEFI_MACHINES = {"x86_64": "q35", "aarch64": "virt"}
#: the -cpu model under TCG when the instance sets no cpuType (aarch64 tiny guest to sshd, 2
#: vCPUs on a 2-core host: cortex-a57 4.3 s, max,pauth-impdef=on 4.7 s, cortex-a72 6.5 s,
#: max 21.5 s)
TCG_CPU = {"x86_64": "max", "aarch64": "cortex-a57"}


@dataclass(frozen=True)
class MachineSpec:
    """Everything QEMU needs to run one instance."""

    name: str
    arch: str
    accel: str  # kvm|tcg|hvf — already resolved, never "auto"
    cpus: int
    memory_bytes: int
    kernel: Path | None  # None: the firmware boots the disk (cloud images)
    initrd: Path | None
    cmdline: str
    serial_socket: Path
    qmp_socket: Path
    ssh_port: int
    disk: Path | None = None
    firmware: tuple[Path, Path] | None = None  # UEFI (code, this instance's variables)
    seed: Path | None = None  # the cloud-init NoCloud ISO
    cpu: str | None = None  # QEMU -cpu model (Lima's cpuType); None: cpu_model()'s default
    shares: tuple[Share, ...] = ()  # host directories over virtio-9p (Lima's mounts:)


def opt_value(value: Path | str) -> str:
    """``value`` for use inside a QEMU ``key=value,...`` option: commas doubled."""
    return str(value).replace(",", ",,")


def qemu_binary(arch: str) -> str:
    """The qemu-system program for a guest arch."""
    return QEMU_BINARIES[arch]


def cpu_model(spec: MachineSpec) -> str:
    """The -cpu model: the configured one, else the host's CPU under a hypervisor, else the
    fastest model measured under TCG for the guest arch."""
    if spec.cpu:
        return spec.cpu
    return "host" if spec.accel in ("kvm", "hvf") else TCG_CPU.get(spec.arch, "max")


def build_argv(
    spec: MachineSpec, binary: str | None = None, incoming: str | None = None
) -> list[str]:
    """The full QEMU argv for ``spec`` (no shell quoting needed: pass it to exec); with
    ``incoming`` (a migration URI), QEMU loads a saved machine from it instead of booting."""
    argv = _disk_argv(spec, binary) if spec.kernel is None else _kernel_argv(spec, binary)
    return argv + ["-incoming", incoming] if incoming else argv


def _kernel_argv(spec: MachineSpec, binary: str | None) -> list[str]:
    """A kernel (and initramfs) booted directly: microvm on x86_64, virt on aarch64."""
    machine = KERNEL_MACHINES[spec.arch]
    argv = [*_head(spec, binary, machine), "-kernel", str(spec.kernel)]
    if spec.initrd is not None:
        argv += ["-initrd", str(spec.initrd)]
    argv += [
        "-append",
        spec.cmdline,
        "-chardev",
        # wait=on: QEMU waits for the agent to attach, so no early output is lost
        f"socket,id=ser0,path={opt_value(spec.serial_socket)},server=on,wait=on",
        "-serial",
        "chardev:ser0",
        "-qmp",
        f"unix:{opt_value(spec.qmp_socket)},server=on,wait=off",
        "-device",
        "virtio-rng-device",
        "-netdev",
        f"user,id=net0,hostfwd=tcp:127.0.0.1:{spec.ssh_port}-:22",
        "-device",
        "virtio-net-device,netdev=net0",
    ]
    if spec.disk is not None:
        argv += [
            "-drive",
            f"if=none,id=disk0,file={opt_value(spec.disk)},format=qcow2",
            "-device",
            "virtio-blk-device,drive=disk0",
        ]
    return argv + mount_argv(spec.shares, pci=False)


def _head(spec: MachineSpec, binary: str | None, machine: str) -> list[str]:
    """What every machine shares: binary, name, accelerator, CPU, memory, no defaults."""
    return [
        binary or qemu_binary(spec.arch),
        "-name",
        f"envdeck-{spec.name},process=envdeck-{spec.name}",
        "-M",
        machine,
        "-accel",
        spec.accel,
        "-cpu",
        cpu_model(spec),
        "-m",
        f"{max(spec.memory_bytes >> 20, 64)}M",
        "-smp",
        str(spec.cpus),
        "-nodefaults",
        "-no-user-config",
        "-nographic",
        "-no-reboot",  # a guest panic or reboot ends QEMU: the agent reports it, no silent loop
    ]


def _disk_argv(spec: MachineSpec, binary: str | None) -> list[str]:
    """A cloud image: UEFI firmware (or, with no ``firmware``, QEMU's own SeaBIOS on x86_64:
    Lima's ``firmware.legacyBIOS``) on the arch's PCIe machine boots the disk; PCI virtio
    devices; the seed as a disk."""
    assert spec.disk is not None
    argv = [*_head(spec, binary, UEFI_MACHINES[spec.arch])]
    if spec.firmware is not None:
        code, variables = spec.firmware
        argv += [
            "-drive",
            f"if=pflash,format=raw,unit=0,readonly=on,file={opt_value(code)}",
            "-drive",
            f"if=pflash,format=raw,unit=1,file={opt_value(variables)}",
        ]
    argv += [
        "-chardev",
        f"socket,id=ser0,path={opt_value(spec.serial_socket)},server=on,wait=on",
        "-serial",
        "chardev:ser0",
        "-qmp",
        f"unix:{opt_value(spec.qmp_socket)},server=on,wait=off",
        "-device",
        "virtio-rng-pci",
        "-netdev",
        f"user,id=net0,hostfwd=tcp:127.0.0.1:{spec.ssh_port}-:22",
        "-device",
        "virtio-net-pci,netdev=net0",
        "-drive",
        f"if=none,id=disk0,file={opt_value(spec.disk)},format=qcow2",
        "-device",
        "virtio-blk-pci,drive=disk0,bootindex=0",
    ]
    if spec.seed is not None:
        argv += [
            "-drive",
            f"if=none,id=seed,file={opt_value(spec.seed)},format=raw,readonly=on",
            "-device",
            "virtio-blk-pci,drive=seed",
        ]
    return argv + mount_argv(spec.shares, pci=True)


def render_argv(argv: list[str]) -> str:
    """argv as one shell-quoted line (for `x`, the literal command view)."""
    return shlex.join(argv)
