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

from envdeck.backend.config.mounts import Mount
from envdeck.backend.errors import UserInputError
from envdeck.backend.text import visible

if TYPE_CHECKING:
    from envdeck.backend.config import InstanceConfig
    from envdeck.backend.store import InstanceDir


@dataclass(frozen=True)
class Share:
    """One of the instance's mounts, exported to the guest under a tag."""

    tag: str  # the 9p mount tag (at most 31 bytes)
    host_path: Path  # the mount's location, symlinks resolved when the instance starts
    mount: Mount

    @property
    def writable(self) -> bool:
        return self.mount.writable

    @property
    def mount_point(self) -> str:
        """Where the guest mounts it."""
        return self.mount.mount_point

    @property
    def guest_options(self) -> str:
        """The guest's ``mount -o`` options (``ro`` on read-only shares as well)."""
        m = self.mount
        mode = "rw" if m.writable else "ro"
        return (
            f"{mode},trans=virtio,version={m.protocol_version},msize={m.msize},cache={m.cache_mode}"
        )


def mount_argv(shares: tuple[Share, ...], pci: bool) -> list[str]:
    """QEMU arguments exporting ``shares``: virtio-9p-pci on q35/virt-with-PCI machines,
    virtio-9p-device on the kernel-booting mmio machines (microvm, virt)."""
    from envdeck.backend.vm.argv import opt_value

    device = "virtio-9p-pci" if pci else "virtio-9p-device"
    argv: list[str] = []
    for i, share in enumerate(shares):
        path = opt_value(share.host_path)
        fsdev = f"local,id=fs{i},path={path},security_model={share.mount.security_model}"
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
        shares.append(Share(tag=tag_of(i), host_path=real, mount=mount))
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


#: where the guest notes each mount that failed at boot (``TAG<tab>what mount said``), read by
#: :data:`CHECK_COMMAND`; written by the tiny guest's rcS and by :func:`cloud_bootcmd`
MOUNT_ERRORS = "/run/envdeck/mount-errors"
ERRORS_MARK = "--envdeck-mount-errors--"
#: the guest's mount table, then the failures it noted (the host compares them to the shares)
CHECK_COMMAND = f"cat /proc/self/mounts; echo {ERRORS_MARK}; cat {MOUNT_ERRORS} 2>/dev/null; true"
#: what a guest without 9p says when mounting one, and what to do about it
_NO_9P = "unknown filesystem type"
_NO_9P_HINT = (
    "the guest kernel has no 9p (Debian's linux-image-cloud-* kernels lack it): use an image"
    " whose kernel has 9p and 9pnet_virtio, e.g. with linux-image-amd64"
)


def cloud_bootcmd(shares: tuple[Share, ...]) -> list[str]:
    """cloud-init ``bootcmd`` lines mounting each share (bootcmd runs at every boot, before
    sshd, with the seed's current list; cloud-init's ``mounts:`` runs once per instance). A
    failed mount is said on the console and noted in :data:`MOUNT_ERRORS` with mount's words."""
    if not shares:
        return []
    errors = shlex.quote(MOUNT_ERRORS)
    lines = [
        "modprobe -q 9pnet_virtio; modprobe -q 9p;"
        f" mkdir -p {shlex.quote(os.path.dirname(MOUNT_ERRORS))} && : > {errors}"
    ]
    for s in shares:
        point = shlex.quote(s.mount_point)
        said = shlex.quote(f"envdeck: mounting {s.tag} at {s.mount_point} failed: ")
        lines.append(
            f"if ! err=$( {{ mkdir -p {point} && mount -t 9p -o {s.guest_options}"
            f" {s.tag} {point}; }} 2>&1 ); then err=$(printf %s \"$err\" | tr '\\n\\t' '  ');"
            f" printf '%s\\t%s\\n' {s.tag} \"$err\" >> {errors};"
            f' echo {said}"$err" | tee /dev/console >&2; fi'
        )
    return lines


def mount_problems(mounts: tuple[Mount, ...], check_output: str) -> list[str]:
    """What is wrong with each of the instance's mounts, from :data:`CHECK_COMMAND`'s output:
    one line per share the guest has not mounted (which one, and mount's words when the guest
    noted them); empty when all are mounted."""
    table, _, noted = check_output.partition(ERRORS_MARK + "\n")
    mounted = set()
    for line in table.splitlines():
        fields = line.split(" ")
        if len(fields) >= 3 and fields[2] == "9p":
            mounted.add((_unescape(fields[0]), _unescape(fields[1])))
    why: dict[str, str] = {}
    for line in noted.splitlines():
        tag, _, said = line.partition("\t")
        why[tag] = said.strip()
    problems = []
    for i, mount in enumerate(mounts):
        tag = tag_of(i)
        if (tag, mount.mount_point) in mounted:
            continue
        said = visible(why.get(tag) or "not in the guest's mount table")
        if _NO_9P in said:
            said += f" ({_NO_9P_HINT})"
        problems.append(f"{mount.location} is not mounted at {mount.mount_point} ({tag}): {said}")
    return problems


def tag_of(index: int) -> str:
    """The 9p mount tag of the instance's ``index``-th mount."""
    return f"mount{index}"


def _unescape(field: str) -> str:
    """A /proc/mounts field as the path it names (space, tab, newline, backslash are octal)."""
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), field)
