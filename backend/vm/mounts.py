"""Host directories shared into a guest over virtio-9p (Lima's ``mounts:`` with 9p).

A :class:`Share` is one host directory, exported under a mount tag; the guest mounts the tag
(``mount -t 9p -o trans=virtio,version=9p2000.L TAG DIR``). :func:`mount_argv` is pure, for
the QEMU command line; :func:`shares_for` turns an instance's configuration into shares.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from envdeck.backend.config import InstanceConfig
    from envdeck.backend.store import InstanceDir


@dataclass(frozen=True)
class Share:
    """One host directory exported to the guest."""

    tag: str  # the 9p mount tag (at most 31 bytes)
    host_path: Path
    writable: bool = False
    security_model: str = "none"  # QEMU fsdev security_model: none | mapped-xattr | passthrough


def mount_argv(shares: tuple[Share, ...], pci: bool) -> list[str]:
    """QEMU arguments exporting ``shares``: virtio-9p-pci on q35/virt-with-PCI machines,
    virtio-9p-device on the kernel-booting mmio machines (microvm, virt)."""
    from envdeck.backend.vm.argv import opt_value

    device = "virtio-9p-pci" if pci else "virtio-9p-device"
    argv: list[str] = []
    for i, share in enumerate(shares):
        path = opt_value(share.host_path)
        fsdev = f"local,id=fs{i},path={path},security_model={share.security_model}"
        if not share.writable:
            fsdev += ",readonly=on"
        argv += ["-fsdev", fsdev, "-device", f"{device},fsdev=fs{i},mount_tag={share.tag}"]
    return argv


def shares_for(cfg: InstanceConfig, inst: InstanceDir) -> tuple[Share, ...]:
    """The shares of an instance's ``mounts:`` (none until the mounts work lands)."""
    return ()
