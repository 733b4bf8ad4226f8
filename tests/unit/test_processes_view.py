"""Filtering and ordering of process rows (shared by `envdeck ps` and the TUI)."""

from __future__ import annotations

from envdeck.backend.processes.view import RowFilter, select


def row(pid, ppid, depth, name, **kw):
    base = {
        "pid": pid,
        "ppid": ppid,
        "depth": depth,
        "name": name,
        "cmdline": [name],
        "user": "root",
        "container": None,
        "container_id": None,
        "emulated": None,
        "cpu_percent": 0.0,
        "rss_bytes": 0,
    }
    return base | kw


ROWS = [
    row(1, 0, 0, "init"),
    row(10, 1, 1, "containerd-shim"),
    row(20, 10, 2, "sh", container="app", user="app"),
    row(21, 20, 3, "busybox", container="app", emulated={"arch": "aarch64"}, cpu_percent=50.0),
    row(30, 1, 1, "sshd", rss_bytes=9000),
]


def test_tree_keeps_ancestors_of_matches_in_order():
    out = select(ROWS, RowFilter(emulated_only=True), tree=True)
    assert [r["pid"] for r in out] == [1, 10, 20, 21]


def test_flat_sorted_and_filtered():
    assert [r["pid"] for r in select(ROWS, RowFilter(), tree=False, sort="cpu")][:1] == [21]
    assert [r["pid"] for r in select(ROWS, RowFilter(), tree=False, sort="mem")][:1] == [30]
    assert [r["pid"] for r in select(ROWS, RowFilter(container="app"), tree=False)] == [20, 21]
    assert [r["pid"] for r in select(ROWS, RowFilter(user="app"), tree=False)] == [20]
    assert [r["pid"] for r in select(ROWS, RowFilter(text="SSH"), tree=False)] == [30]
    assert [r["pid"] for r in select(ROWS, RowFilter(text="21"), tree=False)] == [21]
    assert select(ROWS, RowFilter(text="nothing-like-this"), tree=True) == []
