"""Tree order of processes (robust to PID reuse and bad data), container attribution, diffs."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from typing import Protocol

from envdeck.backend.events import ProcessDiff
from envdeck.backend.processes.model import Proc, ProcessRow, Snapshot


def tree_walk(
    nodes: Iterable[tuple[int, int, int]],
) -> list[tuple[int, int, int]]:
    """Tree order of ``(pid, ppid, start)`` triples: ``[(pid, depth, effective_ppid)]``.

    A parent counts only if it exists and did not start after the child (else its PID was
    reused: the child becomes a root with effective ppid 0). A root whose parent is simply
    absent keeps its ppid. Siblings are ordered by pid;
    anything unreachable (a cycle in bad data) is appended as a root, so no process is lost.
    """
    items = sorted(nodes)
    start_of = {pid: start for pid, _, start in items}
    children: dict[int, list[int]] = {}
    roots: list[int] = []
    parent_of: dict[int, int] = {}
    for pid, ppid, start in items:
        pstart = start_of.get(ppid)
        if ppid != pid and pstart is not None and pstart <= start:
            children.setdefault(ppid, []).append(pid)
            parent_of[pid] = ppid
        else:
            roots.append(pid)
            # Absent parent (outside this pid namespace, or pid 0): keep what the kernel said.
            # Present but younger: that pid was reused, it is not the parent.
            parent_of[pid] = 0 if pstart is not None else ppid
    out: list[tuple[int, int, int]] = []
    seen: set[int] = set()

    def walk(root: int) -> None:
        stack = [(root, 0)]
        while stack:
            pid, depth = stack.pop()
            if pid in seen:
                continue
            seen.add(pid)
            out.append((pid, depth, parent_of[pid]))
            kids = children.get(pid)
            if kids:  # (most processes have none)
                stack.extend((child, depth + 1) for child in reversed(kids))

    for root in roots:
        walk(root)
    for pid, _, _ in items:
        if pid not in seen:  # only reachable through a cycle
            walk(pid)
    return out


def tree_order(rows: list[ProcessRow]) -> list[ProcessRow]:
    """Rows (``envdeck ps --json`` dicts) in tree order, ``depth`` updated in place.

    For UIs that keep rows by pid and apply diffs: call it after applying one.
    """
    by_pid = {r["pid"]: r for r in rows}

    def start(r: ProcessRow) -> int:
        ticks = r.get("start_ticks")
        return int(ticks) if ticks is not None else round((r.get("start_time") or 0) * 100)

    walked = tree_walk((r["pid"], r["ppid"], start(r)) for r in rows)
    out = []
    for pid, depth, _ in walked:
        row = by_pid[pid]
        row["depth"] = depth
        out.append(row)
    return out


class Labeler(Protocol):
    """Turns a container id into what a row shows (ContainerNames is one)."""

    def label(self, cid: str | None) -> str | None: ...


def link(
    procs: list[Proc],
    names: Labeler | None,
    prev: dict[int, Proc] | None = None,
    tree_changed: bool = True,
) -> dict[int, Proc]:
    """Order ``procs`` as a tree; set depth, effective ppid and container attribution.

    ``prev`` is the previous snapshot's processes: a Proc object carried over from it unchanged
    is copied before any change, so the previous snapshot stays intact for diffing. With
    ``tree_changed=False`` (same pids, start times and parents as ``prev``) the previous order
    and depths are reused instead of walking the tree again.
    """
    prev = prev or {}
    by_pid = {p.pid: p for p in procs}
    ordered: dict[int, Proc] = {}
    if not tree_changed and prev.keys() == by_pid.keys():
        for pid, old in prev.items():
            p = by_pid[pid]
            if p is not old:
                p.depth, p.ppid = old.depth, old.ppid
                p.container_id, p.container = old.container_id, old.container
            if p.container_id is not None and names is not None:
                label = names.label(p.container_id)
                if label != p.container:
                    p = replace(p, container=label) if p is old else p
                    p.container = label
            ordered[pid] = p
        return ordered
    for pid, depth, ppid in tree_walk((p.pid, p.raw_ppid, p.start_ticks) for p in procs):
        p = by_pid[pid]
        cid = p.static.cgroup_container
        if cid is None and depth:
            parent = by_pid[ppid]
            cid = parent.static.shim_container or parent.container_id
        label = None
        if cid is not None:
            label = names.label(cid) if names is not None else cid[:12]
        if (p.depth, p.ppid, p.container_id, p.container) != (depth, ppid, cid, label):
            if prev.get(pid) is p:
                p = by_pid[pid] = replace(p)
            p.depth, p.ppid, p.container_id, p.container = depth, ppid, cid, label
        ordered[pid] = p
    return ordered


def diff(old: Snapshot | None, new: Snapshot) -> ProcessDiff:
    """Added / changed / removed between two snapshots of one host (full when ``old`` is None).

    A PID that now names a different process (other start time) is in ``removed`` and
    ``added``: apply removals first. ``changed`` rows are whole rows.
    """
    if old is None:
        return ProcessDiff(host=new.host, full=True, added=new.rows(), summary=new.summary())
    added: list[ProcessRow] = []
    changed: list[ProcessRow] = []
    removed: list[int] = []
    old_procs = old.procs
    for pid, p in new.procs.items():
        o = old_procs.get(pid)
        if o is p:
            continue  # carried over unchanged by the scanner
        if o is None:
            added.append(p.row())
        elif o.start_ticks != p.start_ticks:
            removed.append(pid)
            added.append(p.row())
        elif o.static is not p.static or o.dynamic() != p.dynamic():
            changed.append(p.row())
    removed.extend(pid for pid in old_procs if pid not in new.procs)
    return ProcessDiff(
        host=new.host, added=added, changed=changed, removed=removed, summary=new.summary()
    )
