"""The process pane's pure logic: tree order, collapse, filter, emulated-only, sort."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from envdeck.tui.proctree import (
    TreeOptions,
    command_text,
    compile_filter,
    descendants,
    repaint_only,
    reshaped_rows,
    summarize,
    visible_rows,
)


def row(
    pid: int, ppid: int, cmd: str, cpu: float = 0.0, rss: int = 0, emulated: dict | None = None
) -> dict:
    return {
        "pid": pid,
        "ppid": ppid,
        "user": "root",
        "cpu_percent": cpu,
        "rss_bytes": rss,
        "cmdline": cmd.split(),
        "emulated": emulated,
    }


EMU = {
    "arch": "aarch64",
    "interpreter": "/usr/libexec/qemu-binfmt/aarch64-binfmt-P",
    "program": "/bin/sh",
    "argv": ["sh", "-c", "loop"],
    "command": "sh -c loop",
}

PROCS = {
    r["pid"]: r
    for r in [
        row(1, 0, "init", rss=10),
        row(20, 1, "dockerd", cpu=2.0, rss=300),
        row(21, 20, "shim"),
        row(
            22,
            21,
            "/usr/libexec/qemu-binfmt/aarch64-binfmt-P /bin/sh sh -c loop",
            cpu=40.0,
            emulated=EMU,
        ),
        row(10, 1, "sshd", rss=50),
        row(11, 10, "bash", cpu=1.0),
    ]
}


def pids(rows) -> list[int]:
    return [r.row["pid"] for r in rows]


def test_tree_orders_children_under_parents_sorted_by_pid():
    rows = visible_rows(PROCS, TreeOptions())
    assert pids(rows) == [1, 10, 11, 20, 21, 22]
    assert [r.depth for r in rows] == [0, 1, 2, 1, 2, 3]
    assert rows[0].has_children and not rows[-1].has_children


def test_collapsed_subtree_is_hidden_and_marked():
    rows = visible_rows(PROCS, TreeOptions(collapsed={20}))
    assert pids(rows) == [1, 10, 11, 20]
    assert rows[-1].collapsed


def test_emulated_only_keeps_ancestors_for_context_but_marks_them_unmatched():
    rows = visible_rows(PROCS, TreeOptions(emulated_only=True))
    assert pids(rows) == [1, 20, 21, 22]
    assert [r.matched for r in rows] == [False, False, False, True]


def test_flat_mode_sorts_by_cpu_descending():
    rows = visible_rows(PROCS, TreeOptions(tree=False, sort="cpu", reverse=True))
    assert pids(rows)[:3] == [22, 20, 11]
    assert all(r.depth == 0 for r in rows)


def test_tree_mode_sorts_siblings_by_memory():
    rows = visible_rows(PROCS, TreeOptions(sort="mem", reverse=True))
    assert pids(rows) == [1, 20, 21, 22, 10, 11]


def test_filter_is_a_regex_and_bang_inverts():
    match = compile_filter("ssh|bash")
    assert match is not None and match(PROCS[10]) and not match(PROCS[20])
    inverted = compile_filter("!ssh")
    assert inverted is not None and inverted(PROCS[20]) and not inverted(PROCS[10])
    assert compile_filter("") is None and compile_filter("!") is None


def test_invalid_regex_is_matched_literally():
    match = compile_filter("a[")
    assert match is not None
    assert match(row(5, 1, "echo a[")) and not match(row(6, 1, "echo a"))


def test_filter_in_flat_mode_drops_non_matches():
    rows = visible_rows(PROCS, TreeOptions(tree=False, filter="bash"))
    assert pids(rows) == [11]


def test_command_text_shows_the_emulated_program_as_run():
    assert command_text(PROCS[22]) == "sh -c loop"
    assert command_text(PROCS[11]) == "bash"
    assert command_text({"pid": 2, "name": "kthreadd"}) == "[kthreadd]"


def test_summary_counts_emulated_processes_and_their_cpu():
    assert summarize(PROCS) == (1, 40.0, 43.0)


def test_descendants():
    assert descendants(PROCS, 20) == {21, 22}
    assert descendants(PROCS, 11) == set()


def test_a_parent_loop_still_shows_every_process_once():
    """Collapsed subtrees stay hidden, but rows caught in a ppid loop are not lost."""
    procs = {1: row(1, 2, "a"), 2: row(2, 1, "b"), 3: row(3, 0, "c")}
    assert sorted(pids(visible_rows(procs, TreeOptions()))) == [1, 2, 3]


def test_collapsed_descendants_are_not_re_added_as_roots():
    rows = visible_rows(PROCS, TreeOptions(collapsed={1}))
    assert pids(rows) == [1]


def test_changes_that_move_no_row_only_repaint():
    by_pid = TreeOptions()
    assert repaint_only({"cpu_percent", "rss_bytes", "state", "name", "cmdline"}, by_pid)
    assert not repaint_only({"cpu_percent", "ppid"}, by_pid)  # (a new parent: another place)
    assert not repaint_only({"cmdline"}, TreeOptions(filter="sshd"))
    assert not repaint_only({"emulated"}, TreeOptions(emulated_only=True))
    assert not repaint_only({"cpu_percent"}, TreeOptions(sort="cpu"))
    assert repaint_only({"cpu_percent"}, TreeOptions(sort="mem"))


@settings(max_examples=400)
@given(
    parents=st.lists(st.integers(0, 12), min_size=1, max_size=12),
    gone=st.sets(st.integers(1, 12), max_size=3),
    new_parents=st.lists(st.integers(0, 13), max_size=3),
    sort=st.sampled_from(["pid", "user", "command"]),
    reverse=st.booleans(),
)
def test_rows_that_came_and_went_give_the_lines_a_full_build_would(
    parents, gone, new_parents, sort, reverse
):
    """The pane's shortcut after a scan that added and removed rows: same lines, or None."""
    options = TreeOptions(sort=sort, reverse=reverse)
    procs = {pid: row(pid, ppid, f"cmd{pid % 7}") for pid, ppid in enumerate(parents, start=1)}
    shown = visible_rows(procs, options)
    for pid in gone:
        procs.pop(pid, None)
    added = set()
    for pid, ppid in enumerate(new_parents, start=13):
        procs[pid] = row(pid, ppid, f"cmd{pid % 5}")
        added.add(pid)
    lines = reshaped_rows(shown, procs, added, set(gone), options)
    if lines is not None:
        assert lines == visible_rows(procs, options)


def test_a_new_leaf_under_a_shown_parent_takes_the_shortcut():
    procs = {1: row(1, 0, "init"), 2: row(2, 1, "a"), 4: row(4, 1, "c")}
    shown = visible_rows(procs, TreeOptions())
    procs[3] = row(3, 2, "b")
    del procs[4]
    lines = reshaped_rows(shown, procs, {3}, {4}, TreeOptions())
    assert lines is not None and lines == visible_rows(procs, TreeOptions())
    assert [(line.row["pid"], line.depth, line.has_children) for line in lines] == [
        (1, 0, True),
        (2, 1, True),
        (3, 2, False),
    ]
