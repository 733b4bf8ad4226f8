"""binfmt_misc: list the registered handlers, register and unregister QEMU user-mode ones.

The registry lives at /proc/sys/fs/binfmt_misc: ``status`` (enabled/disabled), ``register``
(write-only) and one file per handler, which reads as::

    enabled
    interpreter /usr/libexec/qemu-binfmt/aarch64-binfmt-P
    flags: POF
    offset 0
    magic 7f454c460201010000000000000000000200b700
    mask ffffffffffffff00fffffffffffffffffeffffff

Registering writes ``:name:M:offset:magic:mask:interpreter:flags`` to ``register`` (the way qus,
tonistiigi/binfmt and Debian's qemu-user-static do it); writing ``-1`` to a handler's file
removes it. Everything here reads or writes those files only.
"""

from __future__ import annotations

import os
import re
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path

from envdeck.backend.arch import host_arch
from envdeck.backend.errors import EnvdeckError, NotFound, UserInputError
from envdeck.backend.processes.emulation import QEMU_USER_ARCHES, elf_arch, interpreter_arch

BINFMT_DIR = Path("/proc/sys/fs/binfmt_misc")
DEBIAN_CONF_DIR = Path("/usr/lib/binfmt.d")

_NAME_OK = re.compile(r"^[A-Za-z0-9_.+-]{1,64}$")
#: The registry's own files: writing -1 to ``status`` removes every handler.
CONTROL_FILES = frozenset({"status", "register"})


def _escaped(data: bytes) -> str:
    return "".join(f"\\x{b:02x}" for b in data)


# ELF magic/mask for the QEMU targets people register most (as in qus and qemu's
# scripts/qemu-binfmt-conf.sh); used when the distribution ships no binfmt.d file. The mask
# ignores EI_ABIVERSION and the padding, and the low bit of e_type (executable or PIE).
_ELF_MASK_LE = _escaped(b"\xff" * 7 + b"\x00" + b"\xff" * 8 + b"\xfe\xff\xff\xff")
_ELF_MASK_BE = _escaped(b"\xff" * 7 + b"\x00" + b"\xff" * 8 + b"\xff\xfe\xff\xff")


def _elf_magic(ei_class: int, ei_data: int, machine: int) -> str:
    head = bytes([0x7F, 0x45, 0x4C, 0x46, ei_class, ei_data, 1, 0]) + bytes(8)
    etype = (2).to_bytes(2, "little" if ei_data == 1 else "big")
    mach = machine.to_bytes(2, "little" if ei_data == 1 else "big")
    return _escaped(head + etype + mach)


BUILTIN_MAGIC: dict[str, tuple[str, str]] = {
    "aarch64": (_elf_magic(2, 1, 183), _ELF_MASK_LE),
    "arm": (_elf_magic(1, 1, 40), _ELF_MASK_LE),
    "riscv64": (_elf_magic(2, 1, 243), _ELF_MASK_LE),
    "ppc64le": (_elf_magic(2, 1, 21), _ELF_MASK_LE),
    "s390x": (_elf_magic(2, 2, 22), _ELF_MASK_BE),
    "mips64el": (_elf_magic(2, 1, 8), _ELF_MASK_LE),
    "x86_64": (_elf_magic(2, 1, 62), _ELF_MASK_LE),
    "i386": (_elf_magic(1, 1, 3), _ELF_MASK_LE),
}


@dataclass(frozen=True)
class Handler:
    """One registered binfmt_misc handler."""

    name: str
    enabled: bool
    interpreter: str
    flags: str
    offset: int
    magic: str  # hex, as the kernel prints it
    mask: str  # hex, empty when the handler has no mask
    kind: str  # "magic" or "extension"
    arch: str | None  # guest arch the handler runs, when it can be told

    @property
    def preserve_argv0(self) -> bool:
        """P flag: the kernel passes the original argv[0] after the full path."""
        return "P" in self.flags

    def to_dict(self) -> dict:
        """Plain-JSON form (the ``envdeck binfmt --json`` rows)."""
        return asdict(self)


def _magic_arch(magic_hex: str, offset: int) -> str | None:
    """The ELF arch an ELF-magic handler matches (e_machine is never masked)."""
    if offset != 0:
        return None
    try:
        return elf_arch(bytes.fromhex(magic_hex))
    except ValueError:
        return None


def parse_entry(name: str, text: str) -> Handler:
    """Parse the text of one /proc/sys/fs/binfmt_misc/NAME file."""
    enabled = False
    interpreter = ""
    flags = ""
    offset = 0
    magic = ""
    mask = ""
    kind = "magic"
    for raw in text.splitlines():
        line = raw.strip()
        if line in ("enabled", "disabled"):
            enabled = line == "enabled"
        elif line.startswith("interpreter "):
            interpreter = line[len("interpreter ") :]
        elif line.startswith("flags:"):
            flags = line[len("flags:") :].strip()
        elif line.startswith("offset "):
            try:
                offset = int(line.split()[1])
            except (IndexError, ValueError):
                offset = 0
        elif line.startswith("magic "):
            magic = line.split(maxsplit=1)[1] if " " in line else ""
        elif line.startswith("mask "):
            mask = line.split(maxsplit=1)[1] if " " in line else ""
        elif line.startswith("extension "):
            kind = "extension"
            magic = line.split(maxsplit=1)[1] if " " in line else ""
    arch = _magic_arch(magic, offset) if kind == "magic" else None
    return Handler(
        name=name,
        enabled=enabled,
        interpreter=interpreter,
        flags=flags,
        offset=offset,
        magic=magic,
        mask=mask,
        kind=kind,
        arch=arch or interpreter_arch(interpreter),
    )


@dataclass(frozen=True)
class Registry:
    """The state of one binfmt_misc mount (host or guest)."""

    mounted: bool
    enabled: bool
    handlers: list[Handler]
    error: str | None = None  # why the registry could not be read, if it could not

    def to_dict(self) -> dict:
        """Plain-JSON form (``envdeck binfmt --json``)."""
        return {
            "mounted": self.mounted,
            "enabled": self.enabled,
            "error": self.error,
            "handlers": [h.to_dict() for h in self.handlers],
        }

    def preserve_argv0_map(self) -> dict[str, bool]:
        """interpreter path -> P flag, for :func:`emulation.detect`."""
        return {h.interpreter: h.preserve_argv0 for h in self.handlers if h.interpreter}


def read_registry(directory: Path | None = None) -> Registry:
    """Read every handler (of :data:`BINFMT_DIR` unless ``directory`` is given); an unmounted
    or unreadable registry is reported, never raised."""
    directory = directory or BINFMT_DIR
    status = directory / "status"
    try:
        enabled = status.read_text().strip() == "enabled"
    except FileNotFoundError:
        return Registry(False, False, [], error=f"binfmt_misc is not mounted at {directory}")
    except OSError as exc:
        return Registry(False, False, [], error=f"cannot read {status}: {exc.strerror or exc}")
    handlers: list[Handler] = []
    try:
        names = sorted(os.listdir(directory))
    except OSError as exc:
        return Registry(True, enabled, [], error=f"cannot list {directory}: {exc.strerror or exc}")
    for name in names:
        if name in CONTROL_FILES:
            continue
        try:
            text = (directory / name).read_text()
        except OSError:
            continue  # removed meanwhile, or unreadable: skip that one
        handlers.append(parse_entry(name, text))
    return Registry(True, enabled, handlers)


# Guest side: one shell command that dumps the registry; parsed by parse_dump.
GUEST_BINFMT_SCRIPT = (
    "d=/proc/sys/fs/binfmt_misc; "
    '[ -e "$d/status" ] || { echo "@@unmounted"; exit 0; }; '
    'echo "@@status $(cat $d/status 2>/dev/null)"; '
    'for f in "$d"/*; do n=${f##*/}; '
    'case "$n" in status|register) continue;; esac; '
    'echo "@@entry $n"; cat "$f" 2>/dev/null; done'
)


def parse_dump(text: str) -> Registry:
    """Parse the output of :data:`GUEST_BINFMT_SCRIPT`."""
    if "@@unmounted" in text:
        return Registry(False, False, [], error="binfmt_misc is not mounted in the guest")
    enabled = False
    handlers: list[Handler] = []
    name: str | None = None
    body: list[str] = []
    for line in text.splitlines() + ["@@end"]:
        if line.startswith("@@"):
            if name is not None:
                handlers.append(parse_entry(name, "\n".join(body)))
            name, body = None, []
            if line.startswith("@@status "):
                enabled = line.split(maxsplit=1)[1].strip() == "enabled"
            elif line.startswith("@@entry "):
                name = line.split(maxsplit=1)[1].strip()
        elif name is not None:
            body.append(line)
    return Registry(True, enabled, handlers)


# --- registering -------------------------------------------------------------------------------


def _writable_registry(directory: Path) -> Path:
    register = directory / "register"
    if not register.exists():
        raise EnvdeckError(
            f"binfmt_misc is not mounted at {directory}",
            hint=f"mount it: sudo mount -t binfmt_misc binfmt_misc {directory}",
        )
    if not os.access(register, os.W_OK):
        raise EnvdeckError(
            "registering binfmt_misc handlers needs root",
            hint="run it again as root (sudo envdeck binfmt register ...)",
        )
    return register


def _debian_line(arch: str) -> str | None:
    conf = DEBIAN_CONF_DIR / f"qemu-{arch}.conf"
    try:
        for line in conf.read_text().splitlines():
            if line.startswith(":"):
                return line.strip()
    except OSError:
        return None
    return None


def check_handler_name(name: str) -> None:
    """Refuse anything but a plain handler name: no path, no ``..``, not ``status`` or
    ``register`` (the registry's control files)."""
    if name in CONTROL_FILES:
        raise UserInputError(
            f"{name!r} is binfmt_misc's control file, not a handler",
            hint="name a handler (see: envdeck binfmt) or an arch such as aarch64",
        )
    if not _NAME_OK.match(name) or ".." in name or name == ".":
        raise UserInputError(f"invalid binfmt handler name {name!r}", hint="use [A-Za-z0-9_.+-]")


def check_flags(flags: str) -> None:
    """Refuse flags other than P, O, C, F."""
    if bad := set(flags) - set("POCF"):
        raise UserInputError(
            f"unknown binfmt flags {''.join(sorted(bad))!r}", hint="use P, O, C, F"
        )


def register_line(
    name: str, magic: str, mask: str, interpreter: str, flags: str = "F", offset: int = 0
) -> str:
    """The line written to ``register`` for a magic handler (magic/mask in ``\\xNN`` form)."""
    check_handler_name(name)
    check_flags(flags)
    if ":" in interpreter or not interpreter.startswith("/"):
        raise UserInputError(f"interpreter must be an absolute path: {interpreter!r}")
    return f":{name}:M:{offset}:{magic}:{mask}:{interpreter}:{flags}"


def write_register(line: str, directory: Path | None = None) -> None:
    """Write one register line; kernel refusals become EnvdeckErrors."""
    register = _writable_registry(directory or BINFMT_DIR)
    try:
        with open(register, "w") as fh:
            fh.write(line)
    except PermissionError as exc:
        raise EnvdeckError(
            "the kernel refused the binfmt_misc registration (permission denied)",
            hint="run as root, outside a user namespace",
        ) from exc
    except FileExistsError as exc:
        raise UserInputError(
            f"a binfmt handler named {line.split(':')[1]!r} already exists"
        ) from exc
    except OSError as exc:
        raise EnvdeckError(
            f"the kernel refused the binfmt_misc registration: {exc.strerror or exc}",
            hint="check the interpreter exists (the F flag opens it now)",
        ) from exc


def register_arch(arch: str, *, flags: str = "F", directory: Path | None = None) -> str:
    """Register ``qemu-<arch>``; returns 'registered' or 'already registered'.

    Uses the distribution's /usr/lib/binfmt.d/qemu-ARCH.conf line when present (adding the
    requested flags), else a built-in ELF magic with ``qemu-ARCH-static`` from PATH.
    """
    check_flags(flags)
    directory = directory or BINFMT_DIR
    if arch not in QEMU_USER_ARCHES:
        raise UserInputError(
            f"{arch!r} is not a QEMU user-mode arch", hint="e.g. aarch64, arm, riscv64"
        )
    if arch == host_arch():
        raise UserInputError(
            f"{arch} is this machine's own arch", hint="registering it would emulate every program"
        )
    name = f"qemu-{arch}"
    if (directory / name).exists():
        return "already registered"
    line = _debian_line(arch)
    if line is not None:
        parts = line.split(":")
        parts[-1] = "".join(f for f in "POCF" if f in parts[-1] or f in flags)
        line = ":".join(parts)
    else:
        if arch not in BUILTIN_MAGIC:
            known = ", ".join(sorted(BUILTIN_MAGIC))
            raise UserInputError(f"no binfmt magic known for {arch!r}", hint=f"known: {known}")
        interpreter = shutil.which(f"qemu-{arch}-static") or shutil.which(f"qemu-{arch}")
        if interpreter is None:
            raise EnvdeckError(
                f"no QEMU user-mode emulator for {arch} on this host",
                hint="install it with: sudo apt-get install qemu-user-static",
            )
        magic, mask = BUILTIN_MAGIC[arch]
        line = register_line(name, magic, mask, interpreter, flags)
    write_register(line, directory)
    return "registered"


def unregister(name: str, directory: Path | None = None) -> None:
    """Remove handler ``name`` (``qemu-aarch64``, or an arch like ``aarch64``).

    Only an existing handler is a target: never ``status`` (``-1`` there removes every
    handler) nor ``register``.
    """
    check_handler_name(name)
    directory = directory or BINFMT_DIR
    _writable_registry(directory)
    entry = next((directory / n for n in (name, f"qemu-{name}") if (directory / n).is_file()), None)
    if entry is None:
        raise NotFound(f"no binfmt handler named {name!r}", hint="see: envdeck binfmt")
    try:
        with open(entry, "w") as fh:
            fh.write("-1")
    except FileNotFoundError:
        return  # removed meanwhile: the goal is reached
    except OSError as exc:
        raise EnvdeckError(
            f"could not remove binfmt handler {name!r}: {exc.strerror or exc}"
        ) from exc
