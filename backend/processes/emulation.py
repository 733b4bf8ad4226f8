"""Tell whether a process runs under QEMU user-mode emulation, for which arch, running what.

The rule (see PATTERNS.md): a process is emulated when basename(exe) is ``qemu-<arch>`` or
``qemu-<arch>-static`` (or ``rosetta``), or when argv[0] is a binfmt_misc interpreter
(``qemu-<arch>-static``, Debian's ``/usr/libexec/qemu-binfmt/<arch>-binfmt-P``, qus's
``/qus/bin/qemu-<arch>-static``). Names are matched, paths are never stat'ed: with the F flag the
interpreter may live in another mount namespace. With the P flag the kernel passes
``[interpreter, /full/path, argv0, args...]``, without it ``[interpreter, /full/path, args...]``.
The arch comes from the interpreter's name and is confirmed by the program's ELF ``e_machine``
where the file is readable.
"""

from __future__ import annotations

import os
import re
import shlex
import stat
from collections.abc import Mapping

from envdeck.backend.processes.model import Emulation

#: QEMU user-mode targets (``qemu-<arch>``), so qemu-img, qemu-nbd, qemu-system-* never match.
QEMU_USER_ARCHES: frozenset[str] = frozenset(
    [
        "aarch64",
        "aarch64_be",
        "alpha",
        "arm",
        "armeb",
        "cris",
        "hexagon",
        "hppa",
        "i386",
        "loongarch64",
        "m68k",
        "microblaze",
        "microblazeel",
        "mips",
        "mips64",
        "mips64el",
        "mipsel",
        "mipsn32",
        "mipsn32el",
        "nios2",
        "or1k",
        "ppc",
        "ppc64",
        "ppc64le",
        "riscv32",
        "riscv64",
        "s390x",
        "sh4",
        "sh4eb",
        "sparc",
        "sparc32plus",
        "sparc64",
        "x86_64",
        "xtensa",
        "xtensaeb",
    ]
)

_QEMU_NAME = re.compile(r"^qemu-([a-z0-9_]+?)(?:-static)?$")
_BINFMT_P_NAME = re.compile(r"^([a-z0-9_]+)-binfmt-P$")

# ELF e_machine -> arch, per byte order (EI_DATA 1 = little, 2 = big) where it matters.
_ELF_MACHINES: dict[int, tuple[str, str]] = {
    2: ("sparc", "sparc"),
    3: ("i386", "i386"),
    4: ("m68k", "m68k"),
    8: ("mipsel", "mips"),
    15: ("hppa", "hppa"),
    20: ("ppc", "ppc"),
    21: ("ppc64le", "ppc64"),
    22: ("s390x", "s390x"),
    40: ("arm", "armeb"),
    42: ("sh4", "sh4eb"),
    43: ("sparc64", "sparc64"),
    62: ("x86_64", "x86_64"),
    76: ("cris", "cris"),
    92: ("or1k", "or1k"),
    94: ("xtensa", "xtensaeb"),
    113: ("nios2", "nios2"),
    164: ("hexagon", "hexagon"),
    183: ("aarch64", "aarch64_be"),
    189: ("microblazeel", "microblaze"),
    243: ("riscv64", "riscv64"),
    258: ("loongarch64", "loongarch64"),
    0x9026: ("alpha", "alpha"),
}

# QEMU user options that take a value (``qemu-aarch64 -L /sysroot -cpu max prog args``).
_QEMU_OPTS_WITH_VALUE = frozenset(
    [
        "-L",
        "-s",
        "-cpu",
        "-E",
        "-U",
        "-0",
        "-r",
        "-B",
        "-R",
        "-d",
        "-D",
        "-p",
        "-g",
        "-plugin",
        "-seed",
        "-trace",
        "-t",
    ]
)


def interpreter_arch(path: str | None) -> str | None:
    """The arch an interpreter runs, or None: ``/usr/bin/qemu-aarch64-static`` -> ``aarch64``,
    ``.../arm-binfmt-P`` -> ``arm``."""
    if not path:
        return None
    base = os.path.basename(path)
    if base.endswith(" (deleted)"):
        base = base[: -len(" (deleted)")]
    if base == "rosetta":
        return "x86_64"
    match = _QEMU_NAME.match(base) or _BINFMT_P_NAME.match(base)
    if match and match.group(1) in QEMU_USER_ARCHES:
        return match.group(1)
    return None


def elf_arch(data: bytes) -> str | None:
    """The arch of an ELF header (the first 20 bytes suffice), or None if not ELF/unknown."""
    if len(data) < 20 or data[:4] != b"\x7fELF":
        return None
    ei_class, ei_data = data[4], data[5]
    if ei_data not in (1, 2):
        return None
    machine = int.from_bytes(data[18:20], "little" if ei_data == 1 else "big")
    names = _ELF_MACHINES.get(machine)
    if names is None:
        return None
    arch = names[ei_data - 1]
    if machine == 243 and ei_class == 1:
        return "riscv32"
    if machine in (8,) and ei_class == 2:
        return "mips64el" if ei_data == 1 else "mips64"
    if machine == 2 and ei_class == 2:
        return "sparc64"
    return arch


def resolve_in_root(path: str, root: str | None, cwd: str | None = None) -> str | None:
    """``path`` as the process sees it, as a path this process can open.

    Opening ``/proc/PID/root/bin/sleep`` lets the kernel follow an absolute symlink
    (``/bin/sleep -> /bin/busybox``) from *our* root, i.e. to the host's busybox. So walk the
    components and rebase every absolute link target onto ``root``. Relative paths start at
    ``cwd`` (``/proc/PID/cwd``). None if the path cannot be resolved.
    """
    if path.startswith("/"):
        base = root or "/"
    elif cwd:
        base = cwd
    else:
        return None
    pending = [p for p in path.split("/") if p]
    done: list[str] = []
    links = 0
    while pending:
        part = pending.pop(0)
        if part == ".":
            continue
        if part == "..":
            if done:
                done.pop()
            continue
        candidate = os.path.join(base, *done, part)
        try:
            target = os.readlink(candidate)
        except OSError:
            done.append(part)  # not a link (or missing: the open will say)
            continue
        links += 1
        if links > 40:
            return None
        if target.startswith("/"):
            base, done = (root or "/"), []
        pending = [p for p in target.split("/") if p] + pending
    return os.path.join(base, *done)


def read_elf_arch(path: str, root: str | None = None, cwd: str | None = None) -> str | None:
    """ELF arch of the file at ``path``, or None.

    ``root`` and ``cwd`` (e.g. ``/proc/PID/root``, ``/proc/PID/cwd``) resolve absolute and
    relative paths as the process sees them (its mount namespace, its working directory).
    """
    full = resolve_in_root(path, root, cwd)
    if full is None:
        return None
    try:
        fd = os.open(
            full, os.O_RDONLY | os.O_NONBLOCK
        )  # never block on a FIFO named like a program
    except OSError:
        return None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        return elf_arch(os.read(fd, 20))
    except OSError:
        return None
    finally:
        os.close(fd)


def _skip_qemu_options(args: list[str]) -> list[str]:
    """Drop ``qemu-<arch>``'s own options from the front of ``args`` (run by hand)."""
    i = 0
    while i < len(args):
        arg = args[i]
        if arg == "--":
            return args[i + 1 :]
        if not arg.startswith("-"):
            break
        opt = "-" + arg.lstrip("-")
        i += 2 if opt in _QEMU_OPTS_WITH_VALUE else 1
    return args[i:]


def detect(
    exe: str | None,
    cmdline: list[str],
    *,
    root: str | None = None,
    cwd: str | None = None,
    preserve_argv0: Mapping[str, bool] | None = None,
    read_elf: bool = True,
) -> Emulation | None:
    """Describe an emulated process, or None for a native one.

    ``exe`` is the /proc/PID/exe target (None when unreadable), ``cmdline`` the process's argv.
    ``root``/``cwd`` (``/proc/PID/root``, ``/proc/PID/cwd``) let the program's ELF header be read
    as the process sees it (the kernel passes the path as given to execve, maybe relative).
    ``preserve_argv0`` maps binfmt interpreter paths to their P flag (from the registry), for
    interpreters whose name does not say it (Debian's ``*-binfmt-P`` does). ``read_elf=False``
    skips the ELF check (the program lives on another machine, e.g. a guest).
    Returns ``{"arch", "interpreter", "program", "argv", "command", "preserve_argv0",
    "arch_source"}``.
    """
    argv0 = cmdline[0] if cmdline else ""
    registry = preserve_argv0 or {}
    argv0_arch = interpreter_arch(argv0) if argv0 else None
    arch = interpreter_arch(exe) or argv0_arch
    if arch is None:
        return None
    via_interpreter = argv0_arch is not None or argv0 in registry
    interpreter = argv0 if via_interpreter else (exe or argv0)
    preserve = via_interpreter and (
        _BINFMT_P_NAME.match(os.path.basename(argv0)) is not None or bool(registry.get(argv0))
    )
    # With P: [interp, /full/path, argv0, args...]; without: [interp, /full/path, args...],
    # or by hand: [qemu-<arch>, qemu options..., prog, args...].
    rest = cmdline[1:] if preserve else _skip_qemu_options(cmdline[1:])
    path = rest[0] if rest else None
    argv = rest[1:] if preserve else rest
    result: Emulation = {
        "arch": arch,
        "interpreter": interpreter,
        "program": path,
        "argv": argv,
        "command": shlex.join(argv) if argv else (path or ""),
        "preserve_argv0": preserve,
        "arch_source": "interpreter",
    }
    if read_elf and path:
        confirmed = read_elf_arch(path, root, cwd)
        if confirmed is not None:
            result["arch"] = confirmed
            result["arch_source"] = "elf"
    return result
