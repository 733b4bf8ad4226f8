"""Just enough ELF64 reading for the tiny image: a binary's DT_NEEDED libraries and a kernel
module's ``.modinfo`` (its ``depends=`` list), so no ``ldd``/``depmod`` has to run on the host."""

from __future__ import annotations

import struct
from pathlib import Path

SHT_DYNAMIC = 6
DT_NEEDED = 1
PT_INTERP = 3


class NotElf(ValueError):
    """The file is not a 64-bit little-endian ELF file."""


def _sections(data: bytes) -> list[tuple[str, int, int, int, int]]:
    """(name, type, offset, size, link) of each section header."""
    if data[:4] != b"\x7fELF" or data[4] != 2 or data[5] != 1:
        raise NotElf("not a 64-bit little-endian ELF file")
    shoff = struct.unpack_from("<Q", data, 0x28)[0]
    shentsize, shnum, shstrndx = struct.unpack_from("<HHH", data, 0x3A)
    raw = []
    for i in range(shnum):
        name, typ, _flags, _addr, off, size, link = struct.unpack_from(
            "<IIQQQQI", data, shoff + i * shentsize
        )
        raw.append((name, typ, off, size, link))
    _, _, str_off, str_size, _ = raw[shstrndx]
    names = data[str_off : str_off + str_size]
    return [(_cstr(names, n), t, o, s, lk) for n, t, o, s, lk in raw]


def _cstr(blob: bytes, offset: int) -> str:
    end = blob.index(b"\0", offset)
    return blob[offset:end].decode()


def needed_libraries(data: bytes) -> list[str]:
    """The DT_NEEDED sonames of an ELF executable or shared library (empty if static)."""
    sections = _sections(data)
    result: list[str] = []
    for _name, typ, off, size, link in sections:
        if typ != SHT_DYNAMIC:
            continue
        _, _, str_off, str_size, _ = sections[link]
        strtab = data[str_off : str_off + str_size]
        for pos in range(off, off + size, 16):
            tag, val = struct.unpack_from("<qQ", data, pos)
            if tag == DT_NEEDED:
                result.append(_cstr(strtab, val))
    return result


def interpreter(data: bytes) -> str | None:
    """The PT_INTERP path (dynamic loader) of an ELF executable, or None."""
    _sections(data)  # validates the header
    phoff = struct.unpack_from("<Q", data, 0x20)[0]
    phentsize, phnum = struct.unpack_from("<HH", data, 0x36)
    for i in range(phnum):
        typ, _flags, off, _vaddr, _paddr, size = struct.unpack_from(
            "<IIQQQQ", data, phoff + i * phentsize
        )
        if typ == PT_INTERP:
            return data[off : off + size].rstrip(b"\0").decode()
    return None


def modinfo(data: bytes) -> dict[str, str]:
    """The ``.modinfo`` key=value pairs of a kernel module (first value wins per key)."""
    for name, _typ, off, size, _link in _sections(data):
        if name == ".modinfo":
            info: dict[str, str] = {}
            for item in data[off : off + size].split(b"\0"):
                key, sep, value = item.decode(errors="replace").partition("=")
                if sep:
                    info.setdefault(key, value)
            return info
    return {}


def module_depends(path: Path) -> list[str]:
    """Module names a ``.ko`` file depends on (from its ``depends=`` modinfo)."""
    deps = modinfo(path.read_bytes()).get("depends", "")
    return [d for d in deps.split(",") if d]
