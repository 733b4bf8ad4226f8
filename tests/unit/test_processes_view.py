"""Filtering and ordering of process rows (one implementation for `envdeck ps` and the pane)."""

from __future__ import annotations

import pytest

from envdeck.backend.errors import UserInputError
from envdeck.backend.processes.view import (
    FILTER_FIELDS,
    SORT_FIELDS,
    SORT_KEYS,
    RowFilter,
    command_text,
    compile_filter,
    select,
    sort_rows,
)


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


EMU = {"arch": "aarch64", "argv": ["busybox", "sleep", "9"], "command": "busybox sleep 9"}

ROWS = [
    row(1, 0, 0, "init"),
    row(10, 1, 1, "containerd-shim"),
    row(20, 10, 2, "sh", container="app", user="app"),
    row(21, 20, 3, "busybox", container="app", emulated=EMU, cpu_percent=50.0),
    row(30, 1, 1, "sshd", rss_bytes=9000, cmdline=["sshd: root@pts/0"]),
    row(31, 1, 1, "kworker/0:1", cmdline=[]),
]


def pids(rows) -> list[int]:
    return [r["pid"] for r in rows]


def keep(**kw):
    return RowFilter(**kw).predicate()


def test_tree_keeps_ancestors_of_matches_in_order():
    assert pids(select(ROWS, keep(emulated_only=True), tree=True)) == [1, 10, 20, 21]


def test_flat_sorted_and_filtered():
    assert pids(select(ROWS, None, tree=False, sort="cpu"))[:1] == [21]
    assert pids(select(ROWS, None, tree=False, sort="mem"))[:1] == [30]
    assert pids(select(ROWS, keep(container="app"), tree=False)) == [20, 21]
    assert pids(select(ROWS, keep(user="app"), tree=False)) == [20]
    assert pids(select(ROWS, keep(text="SSH"), tree=False)) == [30]
    assert pids(select(ROWS, keep(text="nothing-like-this"), tree=True)) == []


def test_the_filter_is_a_regex_over_pid_user_container_command_and_name():
    def matching(text: str) -> list[int]:
        predicate = compile_filter(text)
        assert predicate is not None
        return [r["pid"] for r in ROWS if predicate(r)]

    assert matching("^21 ") == [21]  # one pid: the search text starts "PID USER ..."
    assert matching("^app ") == []
    assert matching(" app ") == [20, 21]  # the user, or the container
    assert matching("busybox sleep") == [21]  # the emulated program as shown, not qemu
    assert matching("kworker/0") == [31]  # "[kworker/0:1]"
    assert matching("^sshd$") == [30]  # the name, although the command line differs
    assert matching("!root") == [20]


def test_an_empty_filter_keeps_everything():
    assert compile_filter("") is None and compile_filter("!") is None
    assert compile_filter(None) is None and RowFilter().predicate() is None


def test_an_invalid_regex_is_refused_or_matched_literally():
    with pytest.raises(UserInputError, match="invalid filter regex 'c\\+\\+\\('"):
        compile_filter("c++(")
    literal = compile_filter("c++(", literal_if_invalid=True)
    assert literal is not None
    assert literal(row(5, 1, 1, "g++", cmdline=["c++(", "x"]))
    assert not literal(row(6, 1, 1, "cc", cmdline=["cc"]))


def test_sort_keys_and_default_directions():
    assert pids(sort_rows(ROWS, "cpu"))[0] == 21  # descending by default
    assert pids(sort_rows(ROWS, "cpu", reverse=False))[-1] == 21
    assert pids(sort_rows(ROWS, "mem"))[0] == 30
    assert pids(sort_rows(ROWS, "user"))[0] == 20  # "app" < "root"
    assert pids(sort_rows(ROWS, "command"))[0] == 31  # "[kworker..." sorts first
    assert pids(sort_rows(ROWS, "no-such-key")) == sorted(pids(ROWS))


def test_command_text_is_what_is_shown():
    assert command_text(ROWS[3]) == "busybox sleep 9"
    assert command_text(ROWS[5]) == "[kworker/0:1]"
    assert command_text(ROWS[4]) == "sshd: root@pts/0"


OTHER = {
    "pid": 99,
    "ppid": 7,
    "depth": 4,
    "name": "other",
    "cmdline": ["other", "-x"],
    "user": "nobody",
    "container": "c",
    "container_id": "c" * 64,
    "emulated": EMU,
    "cpu_percent": 12.5,
    "rss_bytes": 1 << 30,
    "state": "R",
}


@pytest.mark.parametrize("sort", list(SORT_KEYS))
def test_a_sort_key_reads_only_its_sort_fields(sort: str):
    """The process pane keeps its order when only other fields changed: that must be true."""
    for original in ROWS:
        changed = OTHER | {k: v for k, v in original.items() if k in SORT_FIELDS[sort]}
        assert SORT_KEYS[sort](changed) == SORT_KEYS[sort](original)


@pytest.mark.parametrize("text", ["^21 ", "busybox", "app", "!root", "kworker"])
def test_the_filter_reads_only_the_filter_fields(text: str):
    """The process pane keeps its lines when only other fields changed: that must be true."""
    keep = compile_filter(text)
    assert keep is not None
    for original in ROWS:
        changed = OTHER | {k: v for k, v in original.items() if k in FILTER_FIELDS}
        assert keep(changed) == keep(original)
