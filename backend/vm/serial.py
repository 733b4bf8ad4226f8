"""Serial console text: line splitting, cleaning, and a size-capped rotating log on disk."""

from __future__ import annotations

import errno
import os
import re
from collections import deque
from collections.abc import Callable
from pathlib import Path

_ANSI = re.compile(
    r"\x1b\[[0-?]*[ -/]*[@-~]"  # CSI ... final byte
    r"|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)"  # OSC ... BEL or ST
    r"|\x1b[@-Z\\-_]"  # two-byte sequences
)
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


def clean_line(raw: str) -> str:
    """Drop ANSI sequences, carriage returns and other control characters (tabs stay)."""
    return _CONTROL.sub("", _ANSI.sub("", raw.replace("\r", "")))


class LineSplitter:
    """Turn a byte stream into complete text lines (the partial tail is kept for later)."""

    def __init__(self, max_line: int = 4096) -> None:
        self._buffer = b""
        self._max = max_line

    def feed(self, data: bytes) -> list[str]:
        """Add bytes; return the complete, cleaned lines they finish."""
        self._buffer += data
        *complete, self._buffer = self._buffer.split(b"\n")
        if len(self._buffer) > self._max:  # a runaway line without newline: cut it
            complete.append(self._buffer)
            self._buffer = b""
        return [clean_line(part.decode("utf-8", "replace")) for part in complete]

    def flush(self) -> list[str]:
        """The unfinished tail as a line (at end of stream), if any."""
        tail, self._buffer = self._buffer, b""
        return [clean_line(tail.decode("utf-8", "replace"))] if tail else []


#: errno values that mean "no room": the log drops lines and says so instead of failing.
NO_SPACE = (errno.ENOSPC, errno.EDQUOT)


class RotatingLog:
    """Append-only text log capped at ``max_bytes`` per file, keeping ``keep`` old files.

    On a full disk the lines are dropped, ``full`` turns true and ``on_full(True)`` is called
    once; the first write that succeeds again calls ``on_full(False)``. Writes are unbuffered,
    so nothing piles up in memory while the disk is full.
    """

    def __init__(
        self,
        path: Path,
        max_bytes: int = 4 << 20,
        keep: int = 3,
        on_full: Callable[[bool], None] | None = None,
    ) -> None:
        self.path = path
        self.max_bytes = max_bytes
        self.keep = keep
        self.on_full = on_full
        self.full = False
        self.dropped = 0  # lines dropped while the disk was full
        self._fh = open(path, "ab", buffering=0)  # noqa: SIM115 - held open for the log's life
        os.chmod(path, 0o600)

    @property
    def size(self) -> int:
        """Bytes in the current file."""
        return self._fh.tell()

    def write_lines(self, lines: list[str]) -> None:
        """Append lines (newline-terminated); rotate first if they would pass the cap."""
        if not lines:
            return
        data = ("\n".join(lines) + "\n").encode()
        try:
            if self._fh.tell() and self._fh.tell() + len(data) > self.max_bytes:
                self.rotate()
            view = memoryview(data)
            while view:
                written = self._fh.write(view)
                view = view[written or 0 :]
        except OSError as exc:
            if exc.errno not in NO_SPACE:
                raise
            self.dropped += len(lines)
            self._set_full(True)
            return
        self._set_full(False)

    def _set_full(self, full: bool) -> None:
        if full != self.full:
            self.full = full
            if self.on_full is not None:
                self.on_full(full)

    def rotate(self) -> None:
        """serial.log -> serial.log.1 -> ... ; the oldest beyond ``keep`` is dropped."""
        self._fh.close()
        for index in range(self.keep - 1, 0, -1):
            older = self.path.with_name(f"{self.path.name}.{index}")
            if older.exists():
                os.replace(older, self.path.with_name(f"{self.path.name}.{index + 1}"))
        os.replace(self.path, self.path.with_name(f"{self.path.name}.1"))
        oldest = self.path.with_name(f"{self.path.name}.{self.keep + 1}")
        if oldest.exists():
            oldest.unlink()
        self._fh = open(self.path, "ab", buffering=0)  # noqa: SIM115
        os.chmod(self.path, 0o600)

    def close(self) -> None:
        """Close the file."""
        self._fh.close()


def log_files(path: Path) -> list[Path]:
    """The log and its rotated files, oldest first."""
    rotated = sorted(
        path.parent.glob(path.name + ".*"),
        key=lambda p: -int(p.suffix[1:]) if p.suffix[1:].isdigit() else 0,
    )
    return [p for p in rotated if p.suffix[1:].isdigit()] + ([path] if path.exists() else [])


class Tail:
    """The last ``size`` lines seen (for crash reasons and new subscribers)."""

    def __init__(self, size: int = 2000) -> None:
        self.lines: deque[str] = deque(maxlen=size)

    def extend(self, lines: list[str]) -> None:
        """Remember lines."""
        self.lines.extend(lines)

    def last(self, n: int) -> list[str]:
        """The last ``n`` non-empty lines."""
        return [line for line in self.lines if line.strip()][-n:]
