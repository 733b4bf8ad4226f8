"""A pure-Python writer (and reader) for the SVR4 "newc" cpio format the Linux initramfs uses.

Format (one entry): a 110-byte ASCII header ``070701`` + 13 eight-digit hex fields (ino, mode,
uid, gid, nlink, mtime, filesize, devmajor, devminor, rdevmajor, rdevminor, namesize, check),
the NUL-terminated name padded so that header+name is a multiple of 4, then the data padded to a
multiple of 4. An entry named ``TRAILER!!!`` ends the archive. The kernel accepts several
archives back to back (with zero padding between them), which is how a per-instance archive is
appended to the cached base image; a later file of the same path replaces the earlier one.
"""

from __future__ import annotations

import stat
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO

MAGIC = b"070701"
HEADER_LEN = 110
TRAILER = "TRAILER!!!"


def _pad4(length: int) -> int:
    """Bytes of padding that bring ``length`` up to a multiple of 4."""
    return (4 - length % 4) % 4


@dataclass(frozen=True)
class Entry:
    """One archive member as read back."""

    name: str
    mode: int
    uid: int
    gid: int
    nlink: int
    mtime: int
    data: bytes
    rdev: tuple[int, int] = (0, 0)

    @property
    def is_dir(self) -> bool:
        """True for a directory."""
        return stat.S_ISDIR(self.mode)

    @property
    def is_symlink(self) -> bool:
        """True for a symbolic link (``data`` is the target)."""
        return stat.S_ISLNK(self.mode)


class NewcWriter:
    """Write newc entries to a binary stream; call ``close()`` (or use ``with``) for the trailer.

    Paths are archive-relative ("etc/passwd"); a leading "/" is stripped. Parents are not created
    implicitly: the kernel does not create them either, so add directories before their files.
    """

    def __init__(self, out: BinaryIO, *, mtime: int = 0, uid: int = 0, gid: int = 0):
        self._out = out
        self._mtime = mtime
        self._uid = uid
        self._gid = gid
        self._ino = 721  # arbitrary, non-zero start; unique per entry
        self._closed = False
        self.written = 0

    def __enter__(self) -> NewcWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        if not self._closed:
            self.close()

    def _entry(self, name: str, mode: int, data: bytes, nlink: int, rdev: tuple[int, int]) -> None:
        if self._closed:
            raise ValueError("archive already closed")
        raw_name = name.encode() + b"\0"
        self._ino += 1
        fields = (
            self._ino, mode, self._uid, self._gid, nlink, self._mtime, len(data),
            0, 0, rdev[0], rdev[1], len(raw_name), 0,
        )  # fmt: skip
        header = MAGIC + b"".join(b"%08X" % f for f in fields)
        chunk = header + raw_name + b"\0" * _pad4(HEADER_LEN + len(raw_name))
        chunk += data + b"\0" * _pad4(len(data))
        self._out.write(chunk)
        self.written += len(chunk)

    @staticmethod
    def _clean(path: str) -> str:
        name = path.lstrip("/")
        if not name or {".", ".."} & set(name.split("/")):
            raise ValueError(f"bad archive path {path!r}")
        return name

    def add_dir(self, path: str, mode: int = 0o755) -> None:
        """Add a directory."""
        self._entry(self._clean(path), stat.S_IFDIR | mode, b"", 2, (0, 0))

    def add_file(self, path: str, data: bytes, mode: int = 0o644) -> None:
        """Add a regular file with ``data``."""
        self._entry(self._clean(path), stat.S_IFREG | mode, data, 1, (0, 0))

    def add_symlink(self, path: str, target: str) -> None:
        """Add a symbolic link pointing at ``target``."""
        self._entry(self._clean(path), stat.S_IFLNK | 0o777, target.encode(), 1, (0, 0))

    def add_chardev(self, path: str, major: int, minor: int, mode: int = 0o600) -> None:
        """Add a character device node (e.g. dev/console 5:1); no privileges are needed."""
        self._entry(self._clean(path), stat.S_IFCHR | mode, b"", 1, (major, minor))

    def close(self) -> None:
        """Write the trailer entry."""
        self._entry(TRAILER, 0, b"", 1, (0, 0))
        self._closed = True


def read_newc(data: bytes) -> Iterator[Entry]:
    """Yield every entry of one or more concatenated uncompressed newc archives.

    Zero padding between archives is skipped (on 4-byte boundaries, as the kernel does);
    trailers are not yielded. Raises ValueError on anything that is not newc.
    """
    pos = 0
    while pos < len(data):
        if data[pos : pos + 4] == b"\0\0\0\0":
            pos += 4
            continue
        if pos % 4 or data[pos : pos + 6] != MAGIC:
            raise ValueError(f"no newc header at offset {pos}")
        head = data[pos : pos + HEADER_LEN]
        if len(head) < HEADER_LEN:
            raise ValueError(f"truncated header at offset {pos}")
        f = [int(head[6 + 8 * i : 14 + 8 * i], 16) for i in range(13)]
        namesize, filesize = f[11], f[6]
        name_end = pos + HEADER_LEN + namesize
        name = data[pos + HEADER_LEN : name_end - 1].decode()
        start = name_end + _pad4(HEADER_LEN + namesize)
        body = data[start : start + filesize]
        if len(body) < filesize:
            raise ValueError(f"truncated data for {name!r}")
        pos = start + filesize + _pad4(filesize)
        if name == TRAILER:
            continue
        yield Entry(name, f[1], f[2], f[3], f[4], f[5], body, (f[9], f[10]))
