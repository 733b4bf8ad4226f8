"""Binding ids, the keymap from the config, and the `?` help text grouped by pane."""

from __future__ import annotations

from collections.abc import Iterable

from rich.table import Table
from rich.text import Text
from textual.binding import Binding, BindingType

KEY_NAMES = {
    "slash": "/",
    "question_mark": "?",
    "colon": ":",
    "plus": "+",
    "minus": "-",
    "asterisk": "*",
    "less_than_sign": "<",
    "greater_than_sign": ">",
    "left_square_bracket": "[",
    "right_square_bracket": "]",
    "shift+tab": "Shift-Tab",
    "tab": "Tab",
    "enter": "Enter",
    "escape": "Esc",
    "end": "End",
}


def bindings_of(items: Iterable[BindingType]) -> list[Binding]:
    """Only real Binding objects (BINDINGS may hold tuples)."""
    return [b for b in items if isinstance(b, Binding)]


def display_key(key: str) -> str:
    """``less_than_sign`` → ``<``, ``ctrl+s`` → ``Ctrl-S``."""
    parts = []
    for part in key.split(","):
        part = part.strip()
        if part in KEY_NAMES:
            parts.append(KEY_NAMES[part])
        elif part.startswith("ctrl+"):
            parts.append("Ctrl-" + display_key(part[5:]).upper())
        else:
            parts.append(part)
    return " ".join(parts)


def effective_key(binding: Binding, keymap: dict[str, str]) -> str:
    """The key a binding answers to after the user's keymap."""
    if binding.id and binding.id in keymap:
        return keymap[binding.id]
    return binding.key


def help_text(groups: list[tuple[str, list[Binding]]], keymap: dict[str, str]) -> Table:
    """A table per group: key, what it does, binding id (for the keymap)."""
    table = Table.grid(padding=(0, 2))
    table.add_column(justify="right", style="bold")
    table.add_column()
    table.add_column(style="dim")
    for index, (group, bindings) in enumerate(groups):
        if index:
            table.add_row("", "", "")
        table.add_row("", Text(group, style="bold underline"), "")
        seen: set[str] = set()
        for binding in bindings:
            name = binding.id or binding.key
            if name in seen:
                continue
            seen.add(name)
            table.add_row(
                display_key(effective_key(binding, keymap)), binding.description, binding.id or ""
            )
    return table


def all_ids(groups: list[tuple[str, list[Binding]]]) -> list[str]:
    """Every binding id in the help (for docs, tests and keymap validation)."""
    return [b.id for _, bindings in groups for b in bindings if b.id]
