"""Just enough ELF64 reading for the tiny image: a binary's DT_NEEDED libraries and a kernel
module's ``.modinfo`` (its ``depends=`` list), so no ``ldd``/``depmod`` has to run on the host;
and the vmlinux inside an x86 bzImage, which QEMU boots faster (PVH entry, no decompressing
under TCG)."""

from __future__ import annotations

import lzma
import struct
import zlib
from collections.abc import Iterator
from pathlib import Path

SHT_DYNAMIC = 6
DT_NEEDED = 1
PT_INTERP = 3
PT_NOTE = 4
XEN_ELFNOTE_PHYS32_ENTRY = 18


class NotElf(ValueError):
    """The file is not a 64-bit little-endian ELF file."""


def _check(data: bytes) -> None:
    if len(data) < 64 or data[:4] != b"\x7fELF" or data[4] != 2 or data[5] != 1:
        raise NotElf("not a 64-bit little-endian ELF file")


def _sections(data: bytes) -> list[tuple[str, int, int, int, int]]:
    """(name, type, offset, size, link) of each section header."""
    _check(data)
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


def _program_headers(data: bytes) -> Iterator[tuple[int, int, int]]:
    """(type, file offset, file size) of each program header of a 64-bit little-endian ELF."""
    _check(data)
    phoff = struct.unpack_from("<Q", data, 0x20)[0]
    phentsize, phnum = struct.unpack_from("<HH", data, 0x36)
    for i in range(phnum):
        typ, _flags, off, _vaddr, _paddr, size = struct.unpack_from(
            "<IIQQQQ", data, phoff + i * phentsize
        )
        yield typ, off, size


def interpreter(data: bytes) -> str | None:
    """The PT_INTERP path (dynamic loader) of an ELF executable, or None."""
    for typ, off, size in _program_headers(data):
        if typ == PT_INTERP:
            return data[off : off + size].rstrip(b"\0").decode()
    return None


def has_pvh_entry(data: bytes) -> bool:
    """True if an ELF kernel (vmlinux) has the Xen PVH entry note, so QEMU can boot it
    directly with ``-kernel`` (no in-guest decompression)."""
    for typ, off, size in _program_headers(data):
        pos, end = off, off + size
        while typ == PT_NOTE and pos + 12 <= end:
            namesz, descsz, ntype = struct.unpack_from("<III", data, pos)
            name = data[pos + 12 : pos + 12 + namesz].rstrip(b"\0")
            if name == b"Xen" and ntype == XEN_ELFNOTE_PHYS32_ENTRY:
                return True
            pos += 12 + (namesz + 3) // 4 * 4 + (descsz + 3) // 4 * 4
    return False


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


def vmlinux_from_bzimage(data: bytes) -> bytes | None:
    """The ELF vmlinux inside an x86 bzImage when its payload is xz or gzip, else None."""
    if len(data) < 0x250 or data[0x202:0x206] != b"HdrS":
        return None
    setup_sects = data[0x1F1] or 4
    offset, length = struct.unpack_from("<II", data, 0x248)
    start = (setup_sects + 1) * 512 + offset
    payload = data[start : start + length]
    try:
        if payload.startswith(b"\xfd7zXZ\x00"):
            out = lzma.LZMADecompressor().decompress(payload)
        elif payload.startswith(b"\x1f\x8b"):
            out = zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(payload)
        else:
            return None  # zstd, lz4, ...: no decoder in the standard library
    except (lzma.LZMAError, zlib.error):
        return None
    return out if out.startswith(b"\x7fELF") else None
