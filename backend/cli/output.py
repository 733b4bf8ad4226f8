"""Shared CLI output: rich console, JSON printing, error display, small formatters.

Data (names, command lines, reasons, anything a guest, a process, a container or a file said)
is never parsed as markup and never reaches the terminal with its control characters: build
lines with :func:`line` and table cells with :func:`cell`; markup stays for our own literals.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from rich.console import Console
from rich.text import Text

from envdeck.backend.errors import EnvdeckError
from envdeck.backend.text import visible, visible_lines
from envdeck.backend.units import human_bytes, human_duration

__all__ = [
    "cell",
    "console",
    "err_console",
    "error",
    "human_bytes",
    "human_duration",
    "line",
    "print_json",
    "terminal_line",
]

console = Console(highlight=False)
err_console = Console(stderr=True, highlight=False)


def cell(value: object, style: str = "") -> Text:
    """A table cell holding data: control characters made visible, never markup."""
    return Text(visible(value), style=style)


def line(*parts: object | tuple[object, str]) -> Text:
    """One line from parts: a value (shown with :func:`visible`) or ``(value, style)``."""
    out = Text()
    for part in parts:
        if isinstance(part, tuple):
            value, style = part
            out.append(visible(value), style=style)
        else:
            out.append(visible(part))
    return out


def terminal_line(text: str, stream: Any = None) -> str:
    """``text`` for ``stream`` (stdout): made visible on a terminal, exact when piped."""
    stream = stream or sys.stdout
    return visible(text, keep_tabs=True) if stream.isatty() else text


def print_json(data: Any) -> None:
    """Print ``data`` as indented JSON on stdout (machine-readable: no colour)."""
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")
    sys.stdout.flush()


def error(exc: EnvdeckError) -> None:
    """Print a user-facing error on stderr: what, where, and the hint (never as markup)."""
    where = f"{exc.where}: " if exc.where else ""
    message = "\n".join(visible_lines(f"{where}{exc.message}"))
    err_console.print(line(("error:", "bold red"), " "), Text(message), sep="", soft_wrap=True)
    if exc.hint:
        hint = "\n".join(visible_lines(str(exc.hint)))
        err_console.print(line("  ", ("hint:", "yellow"), " "), Text(hint), sep="", soft_wrap=True)
