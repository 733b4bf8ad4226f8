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
from envdeck.backend.images.tinyarch import (
    COMMON_BINARIES,
    COMMON_MODULES,
    RECIPES,
    TinyArch,
)

#: kernel modules the x86_64 guest loads at boot (see tinyarch for each arch's)
MODULES = COMMON_MODULES
#: binaries the x86_64 guest takes from its packages: archive path -> path in the guest
BINARIES = COMMON_BINARIES
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

X86_64 = RECIPES["x86_64"]
LIB_DIR = X86_64.lib_dir
BASE_DIRS = (
    "bin", "sbin", "usr", "usr/bin", "usr/sbin", "lib", "lib64", "lib/modules", "etc",
    "etc/envdeck", "etc/envdeck/rc.d", "etc/dropbear", "etc/acpi", "etc/acpi/PWRF", "dev",
    "proc", "sys", "tmp", "run", "var", "var/log", "mnt", "data",
)  # fmt: skip
SYSINIT_RCS = b"::sysinit:/etc/envdeck/rcS\n"


def guest_files(recipe: TinyArch = X86_64) -> dict[str, bytes]:
    """The guest scripts shipped in images/guest, by name, as ``recipe``'s guest gets them:
    its boot steps added, and run (from inittab) before rcS."""
    files = {name: (GUEST_DIR / name).read_bytes() for name in sorted(GUEST_FILES)}
    steps = b"".join(f"::sysinit:/{dest}\n".encode() for dest in recipe.boot_steps.values())
    if steps:
        assert SYSINIT_RCS in files["inittab"]
        files["inittab"] = files["inittab"].replace(SYSINIT_RCS, steps + SYSINIT_RCS)
    for name in recipe.boot_steps:
        files[name] = (GUEST_DIR / name).read_bytes()
    return dict(sorted(files.items()))


def write_tree(
    cpio: NewcWriter, udir: Path, moddir: Path, version: str, recipe: TinyArch = X86_64
) -> None:
    """Write the guest's whole file tree into ``cpio``."""
    lib_dir = recipe.lib_dir
    for d in (*BASE_DIRS[:6], lib_dir, *BASE_DIRS[6:]):
        cpio.add_dir(d)
    cpio.add_dir("root", 0o700)
    cpio.add_dir("root/.ssh", 0o700)
    cpio.add_chardev("dev/console", 5, 1)
    cpio.add_chardev("dev/null", 1, 3, 0o666)
    cpio.add_symlink("bin/sh", "busybox")
    places = {**GUEST_FILES, **{name: (dest, 0o755) for name, dest in recipe.boot_steps.items()}}
    for name, data in guest_files(recipe).items():
        dest, mode = places[name]
        cpio.add_file(dest, data, mode)
    elves: list[bytes] = []
    for src, dest in recipe.binaries.items():
        data = (udir / src).read_bytes()
        cpio.add_file(dest, data, 0o755)
        elves.append(data)
    for soname, data in _libraries(udir, elves, lib_dir).items():
        cpio.add_file(f"{lib_dir}/{soname}", data, 0o755)
    for interp in {i for e in elves if (i := interpreter(e))}:
        if not interp.startswith(f"/{lib_dir}/"):
            cpio.add_symlink(interp, f"/{lib_dir}/{Path(interp).name}")
    _write_modules(cpio, moddir, version, recipe)


def _find_lib(udir: Path, soname: str, lib_dir: str) -> Path:
    multiarch = lib_dir.removeprefix("lib/")
    for d in (lib_dir, f"usr/lib/{multiarch}", "lib64", "usr/lib64", "lib", "usr/lib"):
        path = udir / d / soname
        if path.is_symlink():
            target = os.readlink(path)
            path = udir / target.lstrip("/") if target.startswith("/") else path.parent / target
        if path.is_file():
            return path
    raise EnvdeckError(f"library {soname} not found in the unpacked packages")


def _libraries(udir: Path, elves: list[bytes], lib_dir: str) -> dict[str, bytes]:
    """Every shared library the binaries need, transitively: soname -> contents."""
    found: dict[str, bytes] = {}
    todo = [n for e in elves for n in needed_libraries(e)]
    while todo:
        soname = todo.pop()
        if soname in found:
            continue
        found[soname] = _find_lib(udir, soname, lib_dir).read_bytes()
        todo.extend(needed_libraries(found[soname]))
    return found


def module_closure(
    index: dict[str, str], deps: Callable[[str], list[str]], modules: tuple[str, ...] = MODULES
) -> list[str]:
    """``modules`` that exist in ``index`` plus their dependencies, dependencies first."""
    return module_closure_of([m for m in modules if m in index], deps)


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


def _write_modules(cpio: NewcWriter, moddir: Path, version: str, recipe: TinyArch) -> None:
    """The needed .ko files under lib/modules/VERSION, a modules.dep for busybox modprobe, and
    /etc/envdeck/modules (rcS's insmod order; the recipe's on-demand modules are shipped but
    left to modprobe). Modules built into the kernel are skipped."""
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
    wanted = (*recipe.modules, *recipe.on_demand)
    unknown = [m for m in wanted if m not in index and m not in builtin_names]
    if unknown:
        raise EnvdeckError(f"kernel {version} has no module {', '.join(unknown)}")
    cache: dict[str, list[str]] = {}

    def deps(name: str) -> list[str]:
        if name not in cache:
            cache[name] = [d for d in module_depends(moddir / index[name]) if d in index]
        return cache[name]

    order = module_closure(index, deps, wanted)
    at_boot = module_closure(index, deps, recipe.modules)
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
    cpio.add_file("etc/envdeck/modules", ("\n".join(index[n] for n in at_boot) + "\n").encode())
