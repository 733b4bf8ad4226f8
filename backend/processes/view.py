"""Filtering and ordering of process rows: one implementation for ``envdeck ps`` and the pane.

The filter is a case-insensitive regex searched in ``PID USER CONTAINER COMMAND`` (the command
as shown, :func:`command_text`; so ``^1234 `` is one pid) and in the process name; a leading
``!`` keeps the rows that do not match. Sorting is by a key of :data:`SORT_KEYS`, ties by pid;
cpu and mem sort descending unless told otherwise.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from envdeck.backend.errors import UserInputError
from envdeck.backend.processes.model import ProcessRow

Predicate = Callable[[ProcessRow], bool]


def command_text(row: ProcessRow) -> str:
    """The command as the user ran it (for emulated processes: the program, not qemu)."""
    emulated = row.get("emulated")
    if emulated:
        if emulated.get("command"):
            return str(emulated["command"])
        if emulated.get("argv"):
            return " ".join(emulated["argv"])
        if emulated.get("program"):
            return str(emulated["program"])
    cmdline: Any = row.get("cmdline")
    if cmdline:
        return " ".join(cmdline) if isinstance(cmdline, list) else str(cmdline)
    return f"[{row.get('name') or '?'}]"


SORT_KEYS: dict[str, Callable[[ProcessRow], Any]] = {
    "pid": lambda r: r.get("pid", 0),
    "user": lambda r: r.get("user") or "",
    "cpu": lambda r: r.get("cpu_percent") or 0.0,
    "mem": lambda r: r.get("rss_bytes") or 0,
    "command": command_text,
}
#: the row fields each sort key reads (a change elsewhere cannot move a row)
SORT_FIELDS: dict[str, frozenset[str]] = {
    "pid": frozenset({"pid"}),
    "user": frozenset({"user"}),
    "cpu": frozenset({"cpu_percent"}),
    "mem": frozenset({"rss_bytes"}),
    "command": frozenset({"emulated", "cmdline", "name"}),
}
SORT_ORDER = list(SORT_KEYS)
DESCENDING_BY_DEFAULT = frozenset({"cpu", "mem"})


def compile_text_filter(
    text: str | None, *, literal_if_invalid: bool = False
) -> Callable[[str], bool] | None:
    """The filter syntax over plain text (a regex searched case-insensitively, ``!`` inverts):
    a test of one line, or None when it keeps every line. Errors as :func:`compile_filter`."""
    text = text or ""
    invert = text.startswith("!")
    body = text[1:] if invert else text
    if not body:
        return None
    try:
        pattern = re.compile(body, re.IGNORECASE)
    except re.error as exc:
        if not literal_if_invalid:
            raise UserInputError(
                f"invalid filter regex {body!r}: {exc}",
                hint="escape special characters with \\ (e.g. c\\+\\+)",
            ) from exc
        pattern = re.compile(re.escape(body), re.IGNORECASE)
    search = pattern.search
    return lambda line: (search(line) is not None) != invert


#: the row fields the filter text is matched against (pid, user, container, command as shown)
FILTER_FIELDS = frozenset({"pid", "user", "container", "cmdline", "emulated", "name"})


def compile_filter(text: str | None, *, literal_if_invalid: bool = False) -> Predicate | None:
    """A predicate for the filter ``text``; None when it keeps every row (empty, or ``!``).

    An invalid regex is a UserInputError, or, with ``literal_if_invalid`` (a filter being
    typed), matched as plain text.
    """
    text = text or ""
    invert = text.startswith("!")
    match = compile_text_filter(text[1:] if invert else text, literal_if_invalid=literal_if_invalid)
    if match is None:
        return None

    def predicate(row: ProcessRow) -> bool:
        shown = (
            f"{row.get('pid')} {row.get('user') or ''} {row.get('container') or ''} "
            f"{command_text(row)}"
        )
        return (match(shown) or match(row.get("name") or "")) != invert

    return predicate


@dataclass(frozen=True)
class RowFilter:
    """What a user narrowed the list to; an empty filter keeps everything."""

    text: str | None = None  # the filter regex (see the module docstring)
    user: str | None = None
    container: str | None = None  # name or id
    emulated_only: bool = False

    def predicate(self, *, literal_if_invalid: bool = False) -> Predicate | None:
        """Every criterion as one predicate (compiled once); None when nothing is filtered."""
        text = compile_filter(self.text, literal_if_invalid=literal_if_invalid)
        if text is None and not (self.emulated_only or self.user or self.container):
            return None

        def predicate(row: ProcessRow) -> bool:
            if self.emulated_only and not row.get("emulated"):
                return False
            if self.user and row.get("user") != self.user:
                return False
            if self.container and self.container not in (
                row.get("container"),
                row.get("container_id"),
            ):
                return False
            return text is None or text(row)

        return predicate


def sort_rows(
    rows: Iterable[ProcessRow], sort: str = "pid", reverse: bool | None = None
) -> list[ProcessRow]:
    """Rows ordered by ``sort`` (an unknown key sorts by pid), ties by pid; ``reverse`` None
    means the key's default direction (descending for cpu and mem)."""
    key = SORT_KEYS.get(sort, SORT_KEYS["pid"])
    if reverse is None:
        reverse = sort in DESCENDING_BY_DEFAULT
    return sorted(rows, key=lambda r: (key(r), r.get("pid", 0)), reverse=reverse)


def select(
    rows: Iterable[ProcessRow],
    keep: Predicate | None,
    *,
    tree: bool,
    sort: str = "pid",
    reverse: bool | None = None,
) -> list[ProcessRow]:
    """The rows ``keep`` accepts (None: all), in order.

    ``tree``: the input's tree order, with the ancestors of every match kept too so the tree
    stays connected. Otherwise a flat list ordered by :func:`sort_rows`.
    """
    rows = list(rows)
    matched = rows if keep is None else [r for r in rows if keep(r)]
    if not tree:
        return sort_rows(matched, sort, reverse)
    by_pid = {r["pid"]: r for r in rows}
    kept = {r["pid"] for r in matched}
    for row in matched:
        up = row
        while up["depth"] > 0 and up["ppid"] in by_pid and up["ppid"] not in kept:
            kept.add(up["ppid"])
            up = by_pid[up["ppid"]]
    return [r for r in rows if r["pid"] in kept]
