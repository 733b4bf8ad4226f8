"""Build the built-in ``tiny`` guest: the Debian kernel + busybox + dropbear (and its libraries)
+ the needed kernel modules, as one initramfs, cached under ``cache_dir()/tiny/DIGEST``. Each
arch has its recipe (images/tinyarch): the aarch64 guest is built from Debian's arm64 packages.

The digest is known before anything is downloaded: it hashes the archive SHA256 of every .deb
(from ``apt-cache show``), the guest scripts and this builder's format version, so a warm start
needs no apt-cache call while apt's lists are unchanged. A build happens in a temp dir under a
lock and is renamed into place, so a directory named by a digest is always complete.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import stat
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from envdeck.backend.errors import EnvdeckError
from envdeck.backend.images import debs
from envdeck.backend.images.cpio import NewcWriter
from envdeck.backend.images.elf import has_pvh_entry, vmlinux_from_bzimage
from envdeck.backend.images.rootfs import MODULES, guest_files, write_tree
from envdeck.backend.images.tinyarch import COMMON_BINARIES, RECIPES, TinyArch, tiny_arch
from envdeck.backend.store import cache_dir, lock_file, write_atomic

Progress = Callable[[str, float | None], None]

#: bump when the image layout changes, so old caches are not reused
BUILD_FORMAT = "2"
#: the modules the x86_64 guest ships: loaded at boot, and on demand (9p for mounts:)
SHIPPED_MODULES = (*MODULES, *RECIPES["x86_64"].on_demand)
APT_LISTS = Path("/var/lib/apt/lists")
DPKG_STATUS = Path("/var/lib/dpkg/status")


@dataclass(frozen=True)
class Built:
    """A complete cache entry."""

    root: Path
    digest: str
    kernel_version: str
    arch: str = "x86_64"

    @property
    def kernel(self) -> Path:
        """The kernel to boot: the PVH-bootable vmlinux when there is one (under TCG it boots
        in about half the time: no decompressing in the guest), else the bzImage."""
        vmlinux = self.root / "vmlinux"
        return vmlinux if vmlinux.exists() else self.root / "vmlinuz"

    initrd = property(lambda self: self.root / "initrd.img")


def tiny_root() -> Path:
    """The tiny image cache: ``cache_dir()/tiny``."""
    return cache_dir() / "tiny"


def compute_digest(
    packages: list[debs.Deb],
    scripts: dict[str, bytes],
    modules: tuple[str, ...] = SHIPPED_MODULES,
    binaries: dict[str, str] = COMMON_BINARIES,
) -> str:
    """The cache key: hashes the .debs' archive SHA256s, the guest scripts, the modules and
    binaries shipped, and the layout."""
    h = hashlib.sha256(f"envdeck-tiny/{BUILD_FORMAT}\n".encode())
    h.update((" ".join(modules) + "\n").encode())
    if binaries != COMMON_BINARIES:
        h.update(f"binaries {sorted(binaries.items())}\n".encode())
    for deb in sorted(packages, key=lambda d: d.package):
        h.update(f"deb {deb.package} {deb.version} {deb.arch} {deb.sha256}\n".encode())
    for name, data in sorted(scripts.items()):
        h.update(f"file {name} {len(data)}\n".encode() + data)
    return h.hexdigest()


def recipe_digest(packages: list[debs.Deb], recipe: TinyArch) -> str:
    """The cache key of ``recipe``'s guest built from ``packages``."""
    modules = (*recipe.modules, *recipe.on_demand)
    return compute_digest(packages, guest_files(recipe), modules, recipe.binaries)


def _debs_dir(top: Path, recipe: TinyArch) -> Path:
    """Where the .debs of one arch are kept under ``top`` (each arch prunes its own)."""
    return top / ("debs" if recipe.arch == "x86_64" else f"debs-{recipe.deb_arch}")


def apt_fingerprint(recipe: TinyArch | None = None) -> str | None:
    """A hash of apt's package lists and dpkg's status (name, size, mtime): when it is
    unchanged, so are apt-cache's answers. None when there are no lists to look at."""
    files = sorted(APT_LISTS.glob("*")) + [DPKG_STATUS]
    stats = [f"{p.name} {st.st_size} {st.st_mtime_ns}" for p in files if (st := _stat(p))]
    if not stats:
        return None
    recipe = recipe or tiny_arch("x86_64")
    key = f"{BUILD_FORMAT} {recipe.kernel_meta} {' '.join(recipe.packages)}\n" + "\n".join(stats)
    return hashlib.sha256(key.encode()).hexdigest()


def _stat(path: Path) -> os.stat_result | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return st if stat.S_ISREG(st.st_mode) else None


def resolve_packages(recipe: TinyArch | None = None) -> tuple[list[debs.Deb], str]:
    """The .debs the image is built from, and the name of the real kernel package.

    apt-cache is slow without its binary cache (about a second per call), so the answer is
    kept in ``tiny/resolved.json`` (``resolved-ARCH.json``) for as long as apt's lists stay
    the same."""
    recipe = recipe or tiny_arch("x86_64")
    suffix = "" if recipe.arch == "x86_64" else f"-{recipe.arch}"
    memo = tiny_root() / f"resolved{suffix}.json"
    fingerprint = apt_fingerprint(recipe)
    try:
        saved = json.loads(memo.read_text())
        if fingerprint and saved["fingerprint"] == fingerprint:
            return [debs.Deb(**d) for d in saved["debs"]], saved["kernel"]
    except (OSError, ValueError, KeyError, TypeError):
        pass
    debs.require_architecture(recipe.deb_arch)
    kernel = debs.real_kernel_package(recipe.kernel_meta)
    qualified = f"{kernel}:{recipe.deb_arch}" if ":" in recipe.kernel_meta else kernel
    # the roots are asked for by name too: apt-cache depends skips a name it does not know
    found = debs.show({qualified, *recipe.packages, *debs.depends_closure(*recipe.packages)})
    packages = [found[n] for n in sorted(found)]
    if fingerprint:
        memo.parent.mkdir(parents=True, exist_ok=True)
        record = {
            "fingerprint": fingerprint,
            "kernel": kernel,
            "debs": [asdict(d) for d in packages],
        }
        write_atomic(memo, json.dumps(record, indent=1), 0o644)
    return packages, kernel


def load(digest: str) -> Built | None:
    """The complete cache entry for ``digest``, or None."""
    root = tiny_root() / digest
    try:
        meta = json.loads((root / "meta.json").read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None
    return Built(root, digest, meta["kernel_version"], meta.get("arch", "x86_64"))


def build_tiny(progress: Progress | None = None, arch: str = "x86_64") -> Built:
    """Return the cached tiny image of ``arch`` for the current packages, building it if
    needed."""
    recipe = tiny_arch(arch)
    label = "tiny image" if arch == "x86_64" else f"{arch} tiny image"
    report = progress or (lambda _text, _fraction: None)
    report(f"resolving Debian packages ({recipe.deb_arch})", None)
    try:
        packages, kernel_pkg = resolve_packages(recipe)
    except EnvdeckError as exc:
        return _fallback(exc, report, arch)
    digest = recipe_digest(packages, recipe)
    if (done := load(digest)) is not None:
        report(f"{label} cached", 1.0)
        return done
    top = tiny_root()
    top.mkdir(parents=True, exist_ok=True)
    with lock_file(top / ".lock", blocking=True):
        if (done := load(digest)) is not None:  # another process built it meanwhile
            report(f"{label} cached", 1.0)
            return done
        for stale in top.glob(".build-*"):  # left by a killed build; we hold the lock
            shutil.rmtree(stale, ignore_errors=True)
        try:
            paths = debs.download(packages, _debs_dir(top, recipe), report)
        except EnvdeckError as exc:
            return _fallback(exc, report, arch)
        work = Path(tempfile.mkdtemp(prefix=".build-", dir=top))
        try:
            kernel_version = _assemble(work, paths, kernel_pkg, report, recipe)
            meta = {
                "digest": digest,
                "arch": arch,
                "kernel_version": kernel_version,
                "packages": {d.package: d.version for d in packages},
                "modules": [*recipe.modules, *recipe.on_demand],
                "built_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            }
            (work / "meta.json").write_text(json.dumps(meta, indent=2))
            os.chmod(work, 0o755)
            os.rename(work, top / digest)
        except BaseException:
            shutil.rmtree(work, ignore_errors=True)
            raise
        _prune(top, keep={digest}, debs_in_use={d.filename for d in packages}, recipe=recipe)
    report(f"{label} built", 1.0)
    built = load(digest)
    assert built is not None
    return built


def _prune(
    top: Path,
    *,
    keep: set[str],
    debs_in_use: set[str],
    spare: int = 1,
    recipe: TinyArch = RECIPES["x86_64"],
) -> None:
    """Drop all but the newest ``spare`` older images of the recipe's arch and the .debs no
    build of it needs any more. Running guests are unaffected: QEMU read their kernel and
    initrd when it started."""
    others = sorted(
        (p for p in top.glob("[0-9a-f]*") if p.name not in keep and _arch_of(p) == recipe.arch),
        key=lambda p: (p / "meta.json").stat().st_mtime,
        reverse=True,
    )
    for old in others[spare:]:
        shutil.rmtree(old, ignore_errors=True)
    for deb in _debs_dir(top, recipe).glob("*.deb"):
        if deb.name not in debs_in_use:
            deb.unlink(missing_ok=True)


def _arch_of(entry: Path) -> str | None:
    """The arch of a complete cache entry (x86_64 before entries said), None if incomplete."""
    try:
        return str(json.loads((entry / "meta.json").read_text()).get("arch", "x86_64"))
    except (OSError, ValueError, AttributeError):
        return None


def latest(arch: str = "x86_64") -> Built | None:
    """The most recently built complete cache entry of ``arch``, or None."""
    entries = [b for p in tiny_root().glob("[0-9a-f]*") if (b := load(p.name)) and b.arch == arch]
    return max(entries, key=lambda b: (b.root / "meta.json").stat().st_mtime, default=None)


def _fallback(error: EnvdeckError, report: Progress, arch: str) -> Built:
    """apt could not resolve or fetch the packages (offline?): use the newest cached image."""
    old = latest(arch)
    if old is None:
        raise error
    report(f"apt failed ({error.message}); using the cached tiny image {old.digest[:12]}", 1.0)
    return old


def _assemble(
    work: Path, paths: dict[str, Path], kernel_pkg: str, report: Progress, recipe: TinyArch
) -> str:
    """Unpack the .debs under ``work`` and write vmlinuz + initrd.img there; return the
    kernel version. The unpacked trees are removed again."""
    kdir, udir = work / "kernel", work / "user"
    report(f"unpacking {kernel_pkg}", 0.1)
    debs.extract(paths[kernel_pkg], kdir)
    others = [p for name, p in sorted(paths.items()) if name != kernel_pkg]
    for i, deb in enumerate(others):
        report(f"unpacking {deb.name.split('_')[0]}", 0.4 + 0.3 * i / len(others))
        debs.extract(deb, udir)
    vmlinuz = sorted((kdir / "boot").glob("vmlinuz-*"))
    if not vmlinuz:
        raise EnvdeckError(f"{kernel_pkg} has no /boot/vmlinuz-*")
    version = vmlinuz[-1].name.removeprefix("vmlinuz-")
    report("writing the initramfs", 0.8)
    buf = io.BytesIO()
    with NewcWriter(buf) as cpio:
        write_tree(cpio, udir, kdir / "lib" / "modules" / version, version, recipe)
    data = buf.getvalue()
    data += b"\0" * (-len(data) % 512)  # appended archives must start 4-byte aligned
    (work / "initrd.img").write_bytes(data)
    shutil.copyfile(vmlinuz[-1], work / "vmlinuz")
    report("unpacking the kernel for direct (PVH) boot", 0.85)
    vmlinux = vmlinux_from_bzimage(vmlinuz[-1].read_bytes())
    if vmlinux is not None and has_pvh_entry(vmlinux):
        (work / "vmlinux").write_bytes(vmlinux)
    report("cleaning up", 0.95)
    shutil.rmtree(kdir)
    shutil.rmtree(udir)
    return version
