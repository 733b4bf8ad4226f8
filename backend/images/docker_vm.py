"""The docker template's disk: a UEFI Debian 12 image with cloud-init and dockerd, built here
from Debian packages by ``debian_disk.sh`` (debootstrap, no loop devices), cached by content.

The cache key is the hash of the script (its package lists included), the variant and the guest
arch, so a new envdeck with another recipe builds a new image while instances made from the old
one keep their backing file. An aarch64 image is built from Debian's arm64 packages (their
scripts run through the host's qemu-aarch64 binfmt handler, so it takes longer). Building needs
root (debootstrap and chroot); the script names any missing tool with the ``apt-get install``
line, and this module turns that into one :class:`MissingTool`.
"""

from __future__ import annotations

import collections
import hashlib
import os
import subprocess
from collections.abc import Callable
from importlib import resources
from pathlib import Path

from envdeck.backend import store
from envdeck.backend.errors import EnvdeckError, MissingTool

Progress = Callable[[str, float | None], None]

SCRIPT_NAME = "debian_disk.sh"
VARIANTS = ("cloud", "docker")
ARCHES = ("x86_64", "aarch64")
#: the exit status the script uses for "cannot build here" (usage, not root, missing tools)
CANNOT_BUILD = 2


def script() -> bytes:
    """The builder script shipped with envdeck."""
    return (resources.files("envdeck.backend.images") / SCRIPT_NAME).read_bytes()


def image_key(variant: str, arch: str = "x86_64") -> str:
    """What the image is built from: the script's text, the variant and the guest arch."""
    return hashlib.sha256(script() + f"\0{variant}\0{arch}".encode()).hexdigest()[:16]


def cached_image(variant: str = "docker", arch: str = "x86_64") -> Path:
    """Where the ``variant`` image for ``arch`` guests of this envdeck is (or will be) cached."""
    name = f"debian-{variant}-{arch}-{image_key(variant, arch)}.qcow2"
    return store.cache_dir() / "images" / name


def image(variant: str = "docker", progress: Progress | None = None, arch: str = "x86_64") -> Path:
    """The cached ``variant`` image for ``arch``, built first (minutes, with progress) if needed."""
    if variant not in VARIANTS or arch not in ARCHES:
        raise EnvdeckError(f"unknown Debian image {variant!r} for {arch!r}")
    target = cached_image(variant, arch)
    if target.exists():
        return target
    what = f"the Debian {variant} image ({arch})"
    if os.geteuid() != 0:
        raise MissingTool(
            f"building {what} needs root (debootstrap and chroot)",
            hint=f"run this command once as root with the same ENVDECK_CACHE; the image is"
            f" cached in {target.parent}",
        )
    store.ensure_private_dir(target.parent)
    with store.lock_file(target.parent / f".debian-{variant}-{arch}.lock", blocking=True):
        if not target.exists():  # another envdeck may have built it while we waited
            _build(variant, arch, target, progress)
    return target


def _build(variant: str, arch: str, target: Path, progress: Progress | None) -> None:
    """Run the script into ``target`` (it writes a temp file and renames it at the end)."""
    what = f"the Debian {variant} image ({arch})"
    if progress:
        progress(f"building {what} from Debian packages (once)", None)
    tail: collections.deque[str] = collections.deque(maxlen=12)
    with resources.as_file(resources.files("envdeck.backend.images") / SCRIPT_NAME) as path:
        proc = subprocess.Popen(
            ["bash", str(path), str(target), variant, arch],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            errors="replace",
        )
        assert proc.stderr is not None
        try:
            for text in proc.stderr:
                text = text.rstrip()
                if text.startswith("==> ") and progress:
                    progress(text[4:], None)
                elif text:
                    tail.append(text)
        finally:
            code = proc.wait()
    if code == 0 and target.exists():
        return
    said = [t.removeprefix("debian_disk: ") for t in tail if t.startswith("debian_disk: ")]
    if code == CANNOT_BUILD and said:
        hint = next((t for t in said if t.startswith("install them with")), None)
        problems = [t for t in said if t != hint and not t.startswith("failed (exit")]
        raise MissingTool(
            f"cannot build {what} here: {'; '.join(problems)}",
            hint=f"{hint.replace('apt-get', 'sudo apt-get')}" if hint else None,
        )
    raise EnvdeckError(
        f"building {what} failed (exit {code}): " + " | ".join(list(tail)[-4:]),
        hint="see the lines above; the build is retried from scratch next time",
    )
