"""Filtering and ordering of process rows (``envdeck ps --json`` dicts): shared by CLI and TUI."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

Row = dict[str, Any]

SORT_KEYS: dict[str, Callable[[Row], Any]] = {
    "cpu": lambda r: (-r["cpu_percent"], r["pid"]),
    "mem": lambda r: (-r["rss_bytes"], r["pid"]),
    "pid": lambda r: r["pid"],
}


@dataclass(frozen=True)
class RowFilter:
    """What a user narrowed the list to; an empty filter matches everything."""

    text: str | None = None  # substring of name or command line (case-insensitive), or a pid
    user: str | None = None
    container: str | None = None  # name or id
    emulated_only: bool = False

    def matches(self, row: Row) -> bool:
        """Whether ``row`` passes every given criterion."""
        if self.emulated_only and not row.get("emulated"):
            return False
        if self.user and row.get("user") != self.user:
            return False
        if self.container and self.container not in (row.get("container"), row.get("container_id")):
            return False
        if self.text:
            needle = self.text.lower()
            hay = " ".join([row.get("name") or "", *row.get("cmdline", [])]).lower()
            if needle not in hay and needle != str(row["pid"]):
                return False
        return True


def select(rows: Iterable[Row], flt: RowFilter, *, tree: bool, sort: str = "pid") -> list[Row]:
    """Filter rows, then order them.

    ``tree``: keep the input's tree order, with the ancestors of every match kept too so the
    tree stays connected. Otherwise a flat list sorted by ``sort`` (cpu, mem or pid).
    """
    rows = list(rows)
    matched = {r["pid"] for r in rows if flt.matches(r)}
    if tree:
        by_pid = {r["pid"]: r for r in rows}
        keep = set(matched)
        for pid in matched:
            row = by_pid[pid]
            while row["depth"] > 0 and row["ppid"] in by_pid and row["ppid"] not in keep:
                keep.add(row["ppid"])
                row = by_pid[row["ppid"]]
        return [r for r in rows if r["pid"] in keep]
    return sorted((r for r in rows if r["pid"] in matched), key=SORT_KEYS[sort])
