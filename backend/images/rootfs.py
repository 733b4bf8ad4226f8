"""The tiny guest's file tree, written as a newc archive: busybox, dropbear and the shared
libraries it needs (found by reading DT_NEEDED, no ldd), the guest scripts of backend/guest, and
the kernel modules to load at boot with their dependencies (from .modinfo, no depmod)."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from envdeck.backend.errors import EnvdeckError
from envdeck.backend.images.cpio import NewcWriter
from envdeck.backend.images.elf import interpreter, module_depends, needed_libraries

#: kernel modules to load at boot (their dependencies are added from .modinfo)
MODULES = (
    "virtio_mmio", "virtio_pci", "virtio_net", "virtio_blk", "virtio_rng",
    "button", "evdev", "ext4", "crc32c_generic",
)  # fmt: skip
#: binaries taken from the packages: archive path in the .deb tree -> path in the guest
BINARIES = {
    "bin/busybox": "bin/busybox",
    "usr/sbin/dropbear": "usr/sbin/dropbear",
    "usr/bin/dropbearkey": "usr/bin/dropbearkey",
    "usr/bin/dropbearconvert": "usr/bin/dropbearconvert",
    "usr/bin/socat": "usr/bin/socat",
}
#: files of backend/guest -> (path in the guest, mode)
GUEST_FILES = {
    "init": ("init", 0o755),
    "inittab": ("etc/inittab", 0o644),
    "rcS": ("etc/envdeck/rcS", 0o755),
    "shutdown": ("etc/envdeck/shutdown", 0o755),
    "power-button": ("etc/acpi/PWRF/00000080", 0o755),
    "profile": ("etc/profile", 0o644),
    "passwd": ("etc/passwd", 0o644),
    "group": ("etc/group", 0o644),
    "shells": ("etc/shells", 0o644),
}
GUEST_DIR = Path(__file__).parent / "guest"

LIB_DIR = "lib/x86_64-linux-gnu"
LIB_SEARCH = (LIB_DIR, "usr/lib/x86_64-linux-gnu", "lib64", "usr/lib64", "lib", "usr/lib")
BASE_DIRS = (
    "bin", "sbin", "usr", "usr/bin", "usr/sbin", "lib", LIB_DIR, "lib64", "lib/modules", "etc",
    "etc/envdeck", "etc/envdeck/rc.d", "etc/dropbear", "etc/acpi", "etc/acpi/PWRF", "dev",
    "proc", "sys", "tmp", "run", "var", "var/log", "mnt", "data",
)  # fmt: skip


def guest_files() -> dict[str, bytes]:
    """The guest scripts shipped in backend/guest, by name."""
    return {name: (GUEST_DIR / name).read_bytes() for name in sorted(GUEST_FILES)}


def write_tree(cpio: NewcWriter, udir: Path, moddir: Path, version: str) -> None:
    """Write the guest's whole file tree into ``cpio``."""
    for d in BASE_DIRS:
        cpio.add_dir(d)
    cpio.add_dir("root", 0o700)
    cpio.add_dir("root/.ssh", 0o700)
    cpio.add_chardev("dev/console", 5, 1)
    cpio.add_chardev("dev/null", 1, 3, 0o666)
    cpio.add_symlink("bin/sh", "busybox")
    for name, (dest, mode) in GUEST_FILES.items():
        cpio.add_file(dest, (GUEST_DIR / name).read_bytes(), mode)
    elves: list[bytes] = []
    for src, dest in BINARIES.items():
        data = (udir / src).read_bytes()
        cpio.add_file(dest, data, 0o755)
        elves.append(data)
    for soname, data in _libraries(udir, elves).items():
        cpio.add_file(f"{LIB_DIR}/{soname}", data, 0o755)
    for interp in {i for e in elves if (i := interpreter(e))}:
        if not interp.startswith(f"/{LIB_DIR}/"):
            cpio.add_symlink(interp, f"/{LIB_DIR}/{Path(interp).name}")
    _write_modules(cpio, moddir, version)


def _find_lib(udir: Path, soname: str) -> Path:
    for d in LIB_SEARCH:
        path = udir / d / soname
        if path.is_symlink():
            target = os.readlink(path)
            path = udir / target.lstrip("/") if target.startswith("/") else path.parent / target
        if path.is_file():
            return path
    raise EnvdeckError(f"library {soname} not found in the unpacked packages")


def _libraries(udir: Path, elves: list[bytes]) -> dict[str, bytes]:
    """Every shared library the binaries need, transitively: soname -> contents."""
    found: dict[str, bytes] = {}
    todo = [n for e in elves for n in needed_libraries(e)]
    while todo:
        soname = todo.pop()
        if soname in found:
            continue
        found[soname] = _find_lib(udir, soname).read_bytes()
        todo.extend(needed_libraries(found[soname]))
    return found


def module_closure(index: dict[str, str], deps: Callable[[str], list[str]]) -> list[str]:
    """Modules of MODULES that exist in ``index`` plus their dependencies, dependencies first."""
    return module_closure_of([m for m in MODULES if m in index], deps)


def module_closure_of(names: str | list[str], deps: Callable[[str], list[str]]) -> list[str]:
    """``names`` and their dependencies (transitively), each after its dependencies."""
    order: list[str] = []
    seen: set[str] = set()

    def visit(name: str) -> None:
        if name in seen:
            return
        seen.add(name)
        for dep in deps(name):
            visit(dep)
        order.append(name)

    for name in [names] if isinstance(names, str) else names:
        visit(name)
    return order


def _write_modules(cpio: NewcWriter, moddir: Path, version: str) -> None:
    """The needed .ko files under lib/modules/VERSION, a modules.dep for busybox modprobe, and
    /etc/envdeck/modules (the insmod order). Modules built into the kernel are skipped."""
    index = {
        p.name.removesuffix(".ko").replace("-", "_"): p.relative_to(moddir).as_posix()
        for p in moddir.glob("kernel/**/*.ko")
    }
    builtin = (
        (moddir / "modules.builtin").read_text() if (moddir / "modules.builtin").exists() else ""
    )
    builtin_names = {
        Path(line).name.removesuffix(".ko").replace("-", "_") for line in builtin.split()
    }
    unknown = [m for m in MODULES if m not in index and m not in builtin_names]
    if unknown:
        raise EnvdeckError(f"kernel {version} has no module {', '.join(unknown)}")
    cache: dict[str, list[str]] = {}

    def deps(name: str) -> list[str]:
        if name not in cache:
            cache[name] = [d for d in module_depends(moddir / index[name]) if d in index]
        return cache[name]

    order = module_closure(index, deps)
    root = f"lib/modules/{version}"
    made = {"lib/modules", root}
    cpio.add_dir(root)
    for name in order:
        rel = index[name]
        parts = f"{root}/{rel}".split("/")[:-1]
        for i in range(3, len(parts) + 1):
            d = "/".join(parts[:i])
            if d not in made:
                cpio.add_dir(d)
                made.add(d)
        cpio.add_file(f"{root}/{rel}", (moddir / rel).read_bytes(), 0o644)
    dep_lines = []  # depmod's form: every dependency, transitively, nearest first
    for name in order:
        below = module_closure_of(name, deps)[:-1]
        dep_lines.append(f"{index[name]}: {' '.join(index[d] for d in reversed(below))}".rstrip())
    cpio.add_file(f"{root}/modules.dep", ("\n".join(dep_lines) + "\n").encode())
    cpio.add_file("etc/envdeck/modules", ("\n".join(index[n] for n in order) + "\n").encode())
