"""Cloud images: fetched by URL (or path) once into the cache, checked against their digest,
and used read-only as the backing file of each instance's qcow2 overlay.

A download goes to a temporary file in the cache and is renamed only after its digest (or,
without one, its announced length) matched and ``qemu-img`` showed a plain qcow2 or raw image,
so an interrupted, corrupt or hostile download never poses as the image. An image with a
backing file or an external data file is refused: QEMU would hand that host file to the guest.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import subprocess
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

from envdeck.backend import store
from envdeck.backend.config import ImageSpec
from envdeck.backend.errors import EnvdeckError, MissingTool, UserInputError
from envdeck.backend.hosttools import require_tool

Progress = Callable[[str, float | None], None]
CHUNK = 1 << 20
#: disk formats an image may have; anything else (vmdk, vhdx, luks, ...) is refused
FORMATS = ("qcow2", "raw")

#: UEFI firmware per guest arch: the Debian/Ubuntu package and its (code, variables template)
#: pairs, first one found wins (Fedora's edk2 paths last).
UEFI_FIRMWARE: dict[str, tuple[str, tuple[tuple[str, str], ...]]] = {
    "x86_64": (
        "ovmf",
        (
            ("/usr/share/OVMF/OVMF_CODE_4M.fd", "/usr/share/OVMF/OVMF_VARS_4M.fd"),
            ("/usr/share/OVMF/OVMF_CODE.fd", "/usr/share/OVMF/OVMF_VARS.fd"),
            ("/usr/share/edk2/ovmf/OVMF_CODE.fd", "/usr/share/edk2/ovmf/OVMF_VARS.fd"),
        ),
    ),
    "aarch64": (
        "qemu-efi-aarch64",
        (
            ("/usr/share/AAVMF/AAVMF_CODE.fd", "/usr/share/AAVMF/AAVMF_VARS.fd"),
            (
                "/usr/share/edk2/aarch64/QEMU_EFI-pflash.raw",
                "/usr/share/edk2/aarch64/vars-template-pflash.raw",
            ),
        ),
    ),
}
#: the size QEMU's machine needs each pflash image to have, where it insists (virt: 64 MiB)
PFLASH_BYTES = {"aarch64": 64 << 20}


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
            raise UserInputError(
                f"cannot download {location}: HTTP {exc.code} {exc.reason}",
                hint="check the image URL in images:",
            ) from exc
        except (urllib.error.URLError, http.client.HTTPException, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise UserInputError(
                f"cannot download {location}: {reason}",
                hint="check the URL and the network (or use a local path)",
            ) from exc
        length = response.headers.get("Content-Length")
        return response, int(length) if length and length.isdigit() else None
    path = Path(location).expanduser()
    try:
        return path.open("rb"), path.stat().st_size
    except OSError as exc:
        raise UserInputError(
            f"cannot read the image {path}: {exc.strerror}", hint="check images: location"
        ) from exc


def digest_of(data: bytes, algorithm: str = "sha256") -> str:
    """``algorithm:hex`` of ``data`` (sha256 or sha512, as images: and base: write them)."""
    return f"{algorithm}:{hashlib.new(algorithm, data).hexdigest()}"


def download_small(location: str, limit: int = 1 << 20) -> bytes:
    """A small file (a base template) read into memory, at most ``limit`` bytes; never written."""
    source, total = _open(location)
    with source:
        if total is not None and total > limit:
            raise UserInputError(
                f"{location} is {total} bytes, more than {limit}", hint="point at a YAML file"
            )
        try:
            data = bytes(source.read(limit + 1))
        except (http.client.HTTPException, OSError) as exc:
            raise UserInputError(
                f"the download of {location} broke off: {_describe(exc)}", hint="try again"
            ) from None
    if len(data) > limit:
        raise UserInputError(f"{location} is more than {limit} bytes", hint="point at a YAML file")
    return data


def digest_warning(image: ImageSpec) -> str:
    """What to tell the user about an image listed without a digest."""
    how = (
        f"curl -fsSL {image.location} | sha256sum"
        if image.location.startswith(("http://", "https://"))
        else f"sha256sum {image.location.removeprefix('file://')}"
    )
    return (
        f"warning: the image {image.location} has no digest: envdeck cannot tell a tampered or"
        f" truncated image from the real one. Add 'digest: sha256:<hex>' to its images: entry"
        f" (compute it with: {how})"
    )


def fetch(image: ImageSpec, progress: Progress | None = None) -> Path:
    """The image's cached copy, downloading (with progress) and verifying it if needed.

    Without a digest the user is warned (through ``progress``) every time, and a body whose
    length is unknown is refused: there is nothing to tell a cut download from the image."""
    if image.digest is None and progress:
        progress(digest_warning(image), None)
    target = cached_path(image)
    if target.exists():
        return target
    store.ensure_private_dir(target.parent)
    name = image.location.rsplit("/", 1)[-1] or image.location
    source, total = _open(image.location)
    if total is None and image.digest is None:
        source.close()
        raise UserInputError(
            f"the server sent {name} without a length and images: gives no digest,"
            " so a cut download cannot be told from the image",
            hint="add 'digest: sha256:<hex>' to the images: entry (sha256sum of the image)",
        )
    with source, store.atomic_output(target, verify=check_image) as out:  # renamed if all is well
        _copy(source, out, total, name, image.digest, progress)
    return target


def _copy(
    source: Any,
    out: BinaryIO,
    total: int | None,
    name: str,
    want: str | None,
    progress: Progress | None,
) -> None:
    """Copy ``source`` to ``out`` checking its length and digest; UserInputError if they differ
    or the connection breaks."""
    algorithm = want.split(":", 1)[0] if want else "sha256"
    digest = hashlib.new(algorithm)
    done = 0
    last = -1.0
    try:
        while chunk := source.read(CHUNK):
            out.write(chunk)
            digest.update(chunk)
            done += len(chunk)
            fraction = done / total if total else None
            if progress and (fraction is None or fraction - last >= 0.01 or done == total):
                progress(f"downloading {name} ({done >> 20} MiB)", fraction)
                last = fraction if fraction is not None else last
    except (http.client.HTTPException, OSError) as exc:  # a cut or reset connection
        raise UserInputError(
            f"the download of {name} broke off after {done} bytes: {_describe(exc)}",
            hint="run the command again to retry (nothing was kept)",
        ) from None
    if total is not None and done != total:
        raise UserInputError(
            f"the download of {name} stopped at {done} of {total} bytes",
            hint="run the command again to retry (nothing was kept)",
        )
    got = f"{algorithm}:{digest.hexdigest()}"
    if want and got != want:
        raise UserInputError(
            f"{name} does not match its digest: expected {want}, got {got}",
            hint="the file changed or the download is corrupt: check images: digest and location",
        )


def _describe(exc: BaseException) -> str:
    if isinstance(exc, http.client.IncompleteRead):
        return "the server ended the response early"
    return getattr(exc, "strerror", None) or str(exc) or type(exc).__name__


def image_info(path: Path) -> dict[str, Any]:
    """``qemu-img info`` of a file (format, virtual-size, backing file, ...)."""
    result = subprocess.run(
        [require_tool("qemu-img"), "info", "--output=json", str(path)],
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        raise UserInputError(
            f"{path} is not a disk image QEMU can read: {result.stderr.strip()}",
            hint="images: must point at a raw or qcow2 disk image",
        )
    info: dict[str, Any] = json.loads(result.stdout)
    return info


def check_image(path: Path) -> dict[str, Any]:
    """``path``'s qemu-img info if it is a self-contained qcow2 or raw image; else UserInputError.

    A backing file or an external data file would make QEMU serve that host file to the guest
    (the class of Lima's CVE-2023-32684), so either one is refused."""
    info = image_info(path)
    fmt = info.get("format")
    if fmt not in FORMATS:
        raise UserInputError(
            f"the image is in {fmt!r} format, not qcow2 or raw",
            hint="convert it (qemu-img convert -O qcow2 IN OUT) or list a qcow2/raw image",
        )
    backing = info.get("backing-filename") or info.get("full-backing-filename")
    if backing:
        raise UserInputError(
            f"the image has a backing file ({backing}):"
            " QEMU would hand that host file to the guest",
            hint="use a self-contained image (qemu-img convert -O qcow2 IN OUT flattens one)",
        )
    data_file = info.get("format-specific", {}).get("data", {}).get("data-file")
    if data_file:
        raise UserInputError(
            f"the image keeps its data in another file ({data_file}): QEMU would hand that"
            " host file to the guest",
            hint="use a self-contained image (qemu-img convert -O qcow2 IN OUT)",
        )
    return info


def create_overlay(base: Path, disk: Path, size: int) -> None:
    """A qcow2 overlay on the read-only cached ``base``, at least ``size`` bytes (or the base's).

    The base is checked again (a cache filled by an older envdeck was not checked)."""
    info = check_image(base)
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


def uefi_firmware(arch: str, root: Path = Path("/")) -> tuple[Path, Path]:
    """(firmware code, template of its variables) for UEFI guests of ``arch``, looked up under
    ``root``; MissingTool naming the package when none is installed (or none has the size the
    machine needs)."""
    package, pairs = UEFI_FIRMWARE[arch]
    size = PFLASH_BYTES.get(arch)
    wrong: list[str] = []
    for code_name, vars_name in pairs:
        code, variables = root / code_name.lstrip("/"), root / vars_name.lstrip("/")
        if not (code.is_file() and variables.is_file()):
            continue
        if size is not None and code.stat().st_size != size:
            wrong.append(f"{code} is {code.stat().st_size} bytes, not {size}")
            continue
        return code, variables
    found = f" ({'; '.join(wrong)}: QEMU needs {size} byte pflash images)" if wrong else ""
    raise MissingTool(
        f"no UEFI firmware for {arch} cloud images{found}",
        hint=f"install it: sudo apt-get install {package}",
    )


def write_efi_vars(target: Path, arch: str, template: Path) -> None:
    """This instance's UEFI variable store: a private copy of ``template`` (0600), grown with
    zeros (a hole, no disk used) to the pflash size the machine needs."""
    data = template.read_bytes().rstrip(b"\0")
    size = max(PFLASH_BYTES.get(arch, 0), template.stat().st_size)
    with store.atomic_output(target) as out:
        out.write(data)
        out.truncate(size)
