"""Turn a process snapshot into the rows the process pane shows (pure, no Textual).

Tree mode orders children under parents (siblings sorted by the sort key) and hides collapsed
subtrees; flat mode sorts everything. The filter and the sort are the backend's
(:mod:`envdeck.backend.processes.view`, the same as ``envdeck ps``); the filter or the
emulated-only toggle keeps matching rows and, in tree mode, their ancestors for context.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import NamedTuple

from envdeck.backend.processes import view
from envdeck.backend.processes.model import ProcessRow
from envdeck.backend.processes.view import (
    DESCENDING_BY_DEFAULT,
    FILTER_FIELDS,
    SORT_FIELDS,
    SORT_KEYS,
    SORT_ORDER,
    Predicate,
    RowFilter,
    command_text,
    sort_rows,
)

__all__ = [
    "DESCENDING_BY_DEFAULT",
    "SORT_ORDER",
    "TreeOptions",
    "VisibleRow",
    "command_text",
    "compile_filter",
    "descendants",
    "repaint_only",
    "reshaped_rows",
    "summarize",
    "visible_rows",
]

Processes = dict[int, ProcessRow]


class VisibleRow(NamedTuple):
    """One line of the process pane (a tuple: 2,000 of these are built per refresh)."""

    row: ProcessRow
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


#: what the tree reads of a row (its place under its parent)
TREE_FIELDS = frozenset({"pid", "ppid"})


def repaint_only(fields: set[str], options: TreeOptions) -> bool:
    """True when rows whose ``fields`` changed keep their lines (the tree, the sort and the
    filter read none of those fields): repainting the lines is enough."""
    read = TREE_FIELDS | SORT_FIELDS.get(options.sort, frozenset())
    if options.filter:
        read |= FILTER_FIELDS
    if options.emulated_only:
        read |= {"emulated"}
    return not fields & read


def compile_filter(text: str) -> Predicate | None:
    """The filter being typed (the backend's syntax); an invalid regex matches literally."""
    return view.compile_filter(text, literal_if_invalid=True)


def _matches(options: TreeOptions) -> Predicate | None:
    flt = RowFilter(text=options.filter, emulated_only=options.emulated_only)
    return flt.predicate(literal_if_invalid=True)


def _sorted(rows: Iterable[ProcessRow], options: TreeOptions) -> list[ProcessRow]:
    return sort_rows(rows, options.sort, options.reverse)


def visible_rows(processes: Processes, options: TreeOptions) -> list[VisibleRow]:
    """The rows to draw, top to bottom."""
    predicate = _matches(options)
    if not options.tree:
        rows = processes.values() if predicate is None else filter(predicate, processes.values())
        return [VisibleRow(r, 0, False, False) for r in _sorted(rows, options)]

    children: dict[int, list[ProcessRow]] = {}
    roots: list[ProcessRow] = []
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

    def walk(start: list[ProcessRow]) -> None:
        stack: list[tuple[ProcessRow, int]] = [(r, 0) for r in reversed(_sorted(start, options))]
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
            if kids and not collapsed:  # (most rows have no children: no sort, no extend)
                ordered = _sorted(kids, options) if len(kids) > 1 else kids
                stack.extend((k, depth + 1) for k in reversed(ordered))

    walk(roots)
    if len(seen) < len(processes):  # a parent loop (pid reuse between scans): show them anyway
        hidden = _hidden_below_collapsed(processes, options.collapsed, children)
        walk([r for r in processes.values() if r["pid"] not in seen and r["pid"] not in hidden])
    return out


def reshaped_rows(
    shown: list[VisibleRow],
    processes: Processes,
    added: set[int],
    removed: set[int],
    options: TreeOptions,
) -> list[VisibleRow] | None:
    """``shown`` (what :func:`visible_rows` built with ``options``) after the rows of ``removed``
    went and those of ``added`` came: the same lines ``visible_rows`` would build now, without
    walking the whole tree. None when that takes a full build: flat mode, a filter, collapsed
    rows, many changes, a new root, a new row with children or whose parent is new too, a gone
    row that had children."""
    if not options.tree or options.filter or options.emulated_only or options.collapsed:
        return None
    if len(added) + len(removed) > 64:
        return None
    gone = added | removed  # (a pid in both: the old process's line goes, the new one's comes)
    lines = [line for line in shown if line.row["pid"] not in gone]
    if any(line.has_children for line in shown if line.row["pid"] in gone):
        return None
    kids = Counter(r.get("ppid") for r in processes.values() if r.get("ppid") != r["pid"])
    key = SORT_KEYS.get(options.sort, SORT_KEYS["pid"])

    def rank(row: ProcessRow) -> tuple:
        return (key(row), row.get("pid", 0))

    for pid in sorted(p for p in added if p in processes):
        row = processes[pid]
        parent = row.get("ppid")
        if parent == pid or parent not in processes or parent in added or kids[pid]:
            return None
        at = next((i for i, line in enumerate(lines) if line.row["pid"] == parent), None)
        if at is None:
            return None
        depth, mine = lines[at].depth, rank(row)
        end = at + 1
        while end < len(lines) and lines[end].depth > depth:
            sibling = lines[end]
            if sibling.depth == depth + 1:
                theirs = rank(sibling.row)
                if (mine > theirs) if options.reverse else (mine < theirs):
                    break
            end += 1
        lines.insert(end, VisibleRow(row, depth + 1, False, False))
    for index, line in enumerate(lines):  # parents that got their first child or lost the last
        pid, parent = line.row["pid"], line.row.get("ppid")
        if not line.depth and parent in processes and parent != pid:
            return None  # (a parent loop: visible_rows shows those rows its own way)
        if line.has_children != (kids[pid] > 0):
            lines[index] = line._replace(has_children=not line.has_children)
    return lines if len(lines) == len(processes) else None


def _hidden_below_collapsed(
    processes: Processes, collapsed: set[int], children: dict[int, list[ProcessRow]]
) -> set[int]:
    hidden: set[int] = set()
    stack = [pid for pid in collapsed if pid in processes]
    while stack:
        for kid in children.get(stack.pop(), []):
            if kid["pid"] not in hidden:
                hidden.add(kid["pid"])
                stack.append(kid["pid"])
    return hidden


def summarize(processes: Processes) -> tuple[int, float, float]:
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


def descendants(processes: Processes, pid: int) -> set[int]:
    """Every pid below ``pid`` (for expand-all / collapse-all of a subtree)."""
    children: dict[int, list[int]] = {}
    for row in processes.values():
        children.setdefault(row.get("ppid", -1), []).append(row["pid"])
    out: set[int] = set()
    stack = [pid]
    while stack:
        for kid in children.get(stack.pop(), []):
            if kid not in out:
                out.add(kid)
                stack.append(kid)
    return out
