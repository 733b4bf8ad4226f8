"""Serial console text: line splitting, cleaning, and a size-capped rotating log on disk."""

from __future__ import annotations

import os
import re
from collections import deque
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


class RotatingLog:
    """Append-only text log capped at ``max_bytes`` per file, keeping ``keep`` old files."""

    def __init__(self, path: Path, max_bytes: int = 4 << 20, keep: int = 3) -> None:
        self.path = path
        self.max_bytes = max_bytes
        self.keep = keep
        self._fh = open(path, "ab")  # noqa: SIM115 - held open for the log's lifetime
        os.chmod(path, 0o600)

    @property
    def size(self) -> int:
        """Bytes in the current file."""
        return self._fh.tell()

    def write_lines(self, lines: list[str]) -> None:
        """Append lines (newline-terminated) and flush; rotate first if they would pass the cap."""
        if not lines:
            return
        data = ("\n".join(lines) + "\n").encode()
        if self._fh.tell() and self._fh.tell() + len(data) > self.max_bytes:
            self.rotate()
        self._fh.write(data)
        self._fh.flush()

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
        self._fh = open(self.path, "ab")  # noqa: SIM115
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
