"""Host directories shared into a guest over virtio-9p (Lima's ``mounts:`` with 9p).

A :class:`Share` is one host directory, exported under a mount tag (``mount0``, ``mount1``…
in the order of ``mounts:``); the guest mounts the tag (``mount -t 9p -o trans=virtio,...
TAG DIR``). QEMU's ``readonly=on`` is what keeps a read-only share read-only, whatever the
guest does. :func:`mount_argv` is pure, for the QEMU command line; :func:`shares_for` turns an
instance's configuration into shares; :func:`kernel_args` tells the tiny guest what to mount
(on its kernel command line, made at every start, so it always matches the shares QEMU was
given) and :func:`cloud_bootcmd` tells a cloud image (cloud-init's bootcmd, run every boot).
"""

from __future__ import annotations

import os
import re
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from envdeck.backend.errors import UserInputError

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
    mount_point: str = ""  # where the guest mounts it
    msize: int = 128 << 10
    protocol_version: str = "9p2000.L"
    cache: str = "fscache"

    @property
    def guest_options(self) -> str:
        """The guest's ``mount -o`` options (``ro`` on read-only shares as well)."""
        mode = "rw" if self.writable else "ro"
        return (
            f"{mode},trans=virtio,version={self.protocol_version},msize={self.msize},"
            f"cache={self.cache}"
        )


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
    """The shares of an instance's ``mounts:``, each location resolved now: a location that is
    a symlink shares the directory it names (QEMU then opens that real path, and does not
    follow symlinks inside the share out of it)."""
    shares = []
    for i, mount in enumerate(cfg.mounts):
        real = Path(os.path.realpath(mount.location))
        if not real.is_dir():
            raise UserInputError(
                f"the mount location {mount.location} of {inst.name!r} is not a directory now",
                hint=f"create it, or remove it from mounts: in {inst.config}",
            )
        shares.append(
            Share(
                tag=f"mount{i}",
                host_path=real,
                writable=mount.writable,
                security_model=mount.security_model,
                mount_point=mount.mount_point,
                msize=mount.msize,
                protocol_version=mount.protocol_version,
                cache=mount.cache_mode,
            )
        )
    return tuple(shares)


_PLAIN = re.compile(rb"[A-Za-z0-9/._+@=-]")


def encode_path(path: str) -> str:
    """A guest path as one kernel command line word: bytes beyond [A-Za-z0-9/._+@=-] as %XX."""
    return "".join(chr(b) if _PLAIN.fullmatch(bytes([b])) else f"%{b:02X}" for b in path.encode())


def kernel_args(shares: tuple[Share, ...]) -> str:
    """`` envdeck.mount=TAG:OPTIONS:MOUNTPOINT`` per share, for the tiny guest's rcS (the mount
    point %-encoded, so spaces and colons survive the command line)."""
    return "".join(
        f" envdeck.mount={s.tag}:{s.guest_options}:{encode_path(s.mount_point)}" for s in shares
    )


def cloud_bootcmd(shares: tuple[Share, ...]) -> list[str]:
    """cloud-init ``bootcmd`` lines mounting each share (bootcmd runs at every boot, before
    sshd, with the seed's current list; cloud-init's ``mounts:`` runs once per instance). A
    failed mount is said on the console and in cloud-init's log."""
    return [
        f"mkdir -p {shlex.quote(s.mount_point)} && mount -t 9p -o {s.guest_options}"
        f" {s.tag} {shlex.quote(s.mount_point)}"
        f" || echo {shlex.quote(f'envdeck: mounting {s.tag} at {s.mount_point} failed')}"
        " | tee /dev/console >&2"
        for s in shares
    ]
