"""Cloud images: fetched by URL (or path) once into the cache, checked against their digest,
and used read-only as the backing file of each instance's qcow2 overlay.

A download goes to a temporary file in the cache and is renamed only after its digest
matched, so an interrupted or corrupt download never poses as the image.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

from envdeck.backend import store
from envdeck.backend.config import ImageSpec
from envdeck.backend.errors import EnvdeckError
from envdeck.backend.hosttools import require_tool

Progress = Callable[[str, float | None], None]
CHUNK = 1 << 20

#: UEFI firmware for x86_64 guests (Debian/Ubuntu package ``ovmf``); first one found wins.
OVMF_PAIRS = (
    ("/usr/share/OVMF/OVMF_CODE_4M.fd", "/usr/share/OVMF/OVMF_VARS_4M.fd"),
    ("/usr/share/OVMF/OVMF_CODE.fd", "/usr/share/OVMF/OVMF_VARS.fd"),
    ("/usr/share/edk2/ovmf/OVMF_CODE.fd", "/usr/share/edk2/ovmf/OVMF_VARS.fd"),
)


def pick_image(images: tuple[ImageSpec, ...], arch: str) -> ImageSpec:
    """The first image for ``arch`` (Lima's rule)."""
    for image in images:
        if image.arch == arch:
            return image
    raise EnvdeckError(f"no image for arch {arch}", hint="add an images: entry with that arch")


def cached_path(image: ImageSpec) -> Path:
    """Where the image lives in the cache: by digest, else by a hash of its location."""
    key = (
        image.digest.split(":", 1)[1]
        if image.digest
        else hashlib.sha256(image.location.encode()).hexdigest()[:32]
    )
    return store.cache_dir() / "images" / f"{key}.img"


def _open(location: str):  # noqa: ANN202 - a binary file-like with an optional length
    if location.startswith(("http://", "https://", "file://")):
        try:
            response = urllib.request.urlopen(location, timeout=30)  # noqa: S310 - the user's URL
        except urllib.error.HTTPError as exc:
            raise EnvdeckError(
                f"cannot download {location}: HTTP {exc.code} {exc.reason}",
                hint="check the image URL in images:",
            ) from exc
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise EnvdeckError(
                f"cannot download {location}: {reason}",
                hint="check the URL and the network (or use a local path)",
            ) from exc
        length = response.headers.get("Content-Length")
        return response, int(length) if length and length.isdigit() else None
    path = Path(location).expanduser()
    try:
        return path.open("rb"), path.stat().st_size
    except OSError as exc:
        raise EnvdeckError(
            f"cannot read the image {path}: {exc.strerror}", hint="check images: location"
        ) from exc


def fetch(image: ImageSpec, progress: Progress | None = None) -> Path:
    """The image's cached copy, downloading (with progress) and verifying it if needed."""
    target = cached_path(image)
    if target.exists():
        return target
    store.ensure_private_dir(target.parent)
    name = image.location.rsplit("/", 1)[-1] or image.location
    source, total = _open(image.location)
    digest = hashlib.sha256()
    done = 0
    with source, store.atomic_output(target) as out:  # renamed into place only if all is well
        last = -1.0
        while chunk := source.read(CHUNK):
            out.write(chunk)
            digest.update(chunk)
            done += len(chunk)
            fraction = done / total if total else None
            if progress and (fraction is None or fraction - last >= 0.01 or done == total):
                progress(f"downloading {name} ({done >> 20} MiB)", fraction)
                last = fraction if fraction is not None else last
        if total is not None and done != total:
            raise EnvdeckError(
                f"the download of {name} stopped at {done} of {total} bytes",
                hint="run the command again to retry",
            )
        got = f"sha256:{digest.hexdigest()}"
        if image.digest and got != image.digest:
            raise EnvdeckError(
                f"{name} does not match its digest: expected {image.digest}, got {got}",
                hint="the file changed or the download is corrupt: check images: digest and location",
            )
    return target


def image_info(path: Path) -> dict:
    """``qemu-img info`` of a file (format, virtual-size)."""
    result = subprocess.run(
        [require_tool("qemu-img"), "info", "--output=json", str(path)],
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        raise EnvdeckError(
            f"{path} is not a disk image QEMU can read: {result.stderr.strip()}",
            hint="images: must point at a raw or qcow2 disk image",
        )
    return json.loads(result.stdout)


def create_overlay(base: Path, disk: Path, size: int) -> None:
    """A qcow2 overlay on the read-only cached ``base``, at least ``size`` bytes (or the base's)."""
    info = image_info(base)
    size = max(size, int(info.get("virtual-size", 0)))
    result = subprocess.run(
        [
            require_tool("qemu-img"),
            "create",
            "-q",
            "-f",
            "qcow2",
            "-F",
            str(info["format"]),
            "-b",
            str(base),
            str(disk),
            str(size),
        ],
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        raise EnvdeckError(f"qemu-img could not create the disk: {result.stderr.strip()}")
    disk.chmod(0o600)


def ovmf() -> tuple[Path, Path]:
    """(firmware code, template of its variables) for UEFI guests."""
    for code, variables in OVMF_PAIRS:
        if os.path.exists(code) and os.path.exists(variables):
            return Path(code), Path(variables)
    raise EnvdeckError(
        "no UEFI firmware (OVMF) found for cloud images",
        hint="install it: sudo apt-get install ovmf",
    )
