"""Turn a process snapshot into the rows the process pane shows (pure, no Textual).

Tree mode orders children under parents (siblings sorted by the sort key) and hides collapsed
subtrees; flat mode sorts everything. A filter (regex, ``!`` prefix inverts) or the
emulated-only toggle keeps matching rows and, in tree mode, their ancestors for context.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import NamedTuple

SORT_KEYS: dict[str, Callable[[dict], object]] = {
    "pid": lambda r: r.get("pid", 0),
    "user": lambda r: r.get("user") or "",
    "cpu": lambda r: r.get("cpu_percent") or 0.0,
    "mem": lambda r: r.get("rss_bytes") or 0,
    "command": lambda r: command_text(r),
}
SORT_ORDER = list(SORT_KEYS)
DESCENDING_BY_DEFAULT = {"cpu", "mem"}


class VisibleRow(NamedTuple):
    """One line of the process pane (a tuple: 2,000 of these are built per refresh)."""

    row: dict
    depth: int
    has_children: bool
    collapsed: bool
    matched: bool = True


@dataclass
class TreeOptions:
    """What the user chose: tree or flat, sort, filter, emulated only, collapsed pids."""

    tree: bool = True
    sort: str = "pid"
    reverse: bool = False
    filter: str = ""
    emulated_only: bool = False
    collapsed: set[int] = field(default_factory=set)


def command_text(row: dict) -> str:
    """The command as the user ran it (for emulated processes: the program, not qemu)."""
    emulated = row.get("emulated")
    if emulated:
        if emulated.get("command"):
            return str(emulated["command"])
        if emulated.get("argv"):
            return " ".join(emulated["argv"])
        if emulated.get("program"):
            return str(emulated["program"])
    cmdline = row.get("cmdline")
    if cmdline:
        return " ".join(cmdline) if isinstance(cmdline, list) else str(cmdline)
    return f"[{row.get('name') or '?'}]"


def compile_filter(text: str) -> Callable[[dict], bool] | None:
    """A predicate for the filter text (regex, case-insensitive; ``!`` inverts); None = all.

    An invalid regex is matched literally, so typing never raises.
    """
    if not text:
        return None
    invert = text.startswith("!")
    body = text[1:] if invert else text
    if not body:
        return None
    try:
        pattern = re.compile(body, re.IGNORECASE)
    except re.error:
        pattern = re.compile(re.escape(body), re.IGNORECASE)

    def predicate(row: dict) -> bool:
        hay = " ".join(
            str(x)
            for x in (row.get("pid"), row.get("user"), row.get("container"), command_text(row))
        )
        return bool(pattern.search(hay)) != invert

    return predicate


def _matches(options: TreeOptions) -> Callable[[dict], bool] | None:
    text = compile_filter(options.filter)
    if text is None and not options.emulated_only:
        return None

    def predicate(row: dict) -> bool:
        if options.emulated_only and not row.get("emulated"):
            return False
        return text is None or text(row)

    return predicate


def _sorted(rows: Iterable[dict], options: TreeOptions) -> list[dict]:
    key = SORT_KEYS.get(options.sort, SORT_KEYS["pid"])
    return sorted(rows, key=lambda r: (key(r), r.get("pid", 0)), reverse=options.reverse)


def visible_rows(processes: dict[int, dict], options: TreeOptions) -> list[VisibleRow]:
    """The rows to draw, top to bottom."""
    predicate = _matches(options)
    if not options.tree:
        rows = processes.values() if predicate is None else filter(predicate, processes.values())
        return [VisibleRow(r, 0, False, False) for r in _sorted(rows, options)]

    children: dict[int, list[dict]] = {}
    roots: list[dict] = []
    for row in processes.values():
        ppid = row.get("ppid")
        if ppid in processes and ppid != row["pid"]:
            children.setdefault(ppid, []).append(row)
        else:
            roots.append(row)

    keep: set[int] | None = None
    if predicate is not None:
        keep = set()
        for row in processes.values():
            if predicate(row):
                pid = row["pid"]
                while pid in processes and pid not in keep:  # the match and its ancestors
                    keep.add(pid)
                    pid = processes[pid].get("ppid")

    out: list[VisibleRow] = []
    seen: set[int] = set()

    def walk(start: list[dict]) -> None:
        stack: list[tuple[dict, int]] = [(r, 0) for r in reversed(_sorted(start, options))]
        while stack:
            row, depth = stack.pop()
            pid = row["pid"]
            if pid in seen or (keep is not None and pid not in keep):
                continue
            seen.add(pid)
            kids = children.get(pid, [])
            if keep is not None:
                kids = [k for k in kids if k["pid"] in keep]
            collapsed = pid in options.collapsed and bool(kids)
            matched = predicate is None or predicate(row)
            out.append(VisibleRow(row, depth, bool(kids), collapsed, matched))
            if not collapsed:
                stack.extend((k, depth + 1) for k in reversed(_sorted(kids, options)))

    walk(roots)
    if len(seen) < len(processes):  # a parent loop (pid reuse between scans): show them anyway
        hidden = _hidden_below_collapsed(processes, options.collapsed, children)
        walk([r for r in processes.values() if r["pid"] not in seen and r["pid"] not in hidden])
    return out


def _hidden_below_collapsed(
    processes: dict[int, dict], collapsed: set[int], children: dict[int, list[dict]]
) -> set[int]:
    hidden: set[int] = set()
    stack = [pid for pid in collapsed if pid in processes]
    while stack:
        for kid in children.get(stack.pop(), []):
            if kid["pid"] not in hidden:
                hidden.add(kid["pid"])
                stack.append(kid["pid"])
    return hidden


def summarize(processes: dict[int, dict]) -> tuple[int, float, float]:
    """(emulated process count, their CPU %, all processes' CPU %)."""
    count = 0
    emulated_cpu = 0.0
    total_cpu = 0.0
    for row in processes.values():
        cpu = row.get("cpu_percent") or 0.0
        total_cpu += cpu
        if row.get("emulated"):
            count += 1
            emulated_cpu += cpu
    return count, emulated_cpu, total_cpu


def descendants(processes: dict[int, dict], pid: int) -> set[int]:
    """Every pid below ``pid`` (for expand-all / collapse-all of a subtree)."""
    children: dict[int, list[int]] = {}
    for row in processes.values():
        children.setdefault(row.get("ppid"), []).append(row["pid"])
    out: set[int] = set()
    stack = [pid]
    while stack:
        for kid in children.get(stack.pop(), []):
            if kid not in out:
                out.add(kid)
                stack.append(kid)
    return out
