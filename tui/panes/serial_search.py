"""Search the whole serial log on disk (all rotated files), not only the in-memory window."""

from __future__ import annotations

import re
from pathlib import Path


def log_files(serial_log: Path) -> list[Path]:
    """``serial.log`` and its rotations, oldest first (serial.log.3, .2, .1, serial.log)."""
    rotated = sorted(
        (p for p in serial_log.parent.glob(serial_log.name + ".*") if p.suffix[1:].isdigit()),
        key=lambda p: int(p.suffix[1:]),
        reverse=True,
    )
    return [*rotated, *([serial_log] if serial_log.exists() else [])]


def search_log(serial_log: Path, pattern: str, limit: int = 500) -> tuple[list[str], int]:
    """Lines matching ``pattern`` (regex, any case) as ``file:line: text``; and total hits."""
    try:
        regex = re.compile(pattern, re.IGNORECASE)
    except re.error:
        regex = re.compile(re.escape(pattern), re.IGNORECASE)
    hits: list[str] = []
    total = 0
    for path in log_files(serial_log):
        with open(path, encoding="utf-8", errors="replace") as fh:
            for lineno, line in enumerate(fh, 1):
                if regex.search(line):
                    total += 1
                    if len(hits) < limit:
                        hits.append(f"{path.name}:{lineno}: {line.rstrip()}")
    return hits, total
