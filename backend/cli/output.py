"""Shared CLI output: rich console, JSON printing, error display, small formatters.

Data (names, command lines, reasons, anything a guest, a process, a container or a file said)
is never parsed as markup and never reaches the terminal with its control characters: build
lines with :func:`line` and table cells with :func:`cell`; markup stays for our own literals.
"""

from __future__ import annotations

import importlib
import json
import sys
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from envdeck.backend.errors import EnvdeckError
from envdeck.backend.text import visible, visible_lines
from envdeck.backend.units import human_bytes, human_duration

__all__ = [
    "LazyChoices",
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

if TYPE_CHECKING:
    from rich.console import Console
    from rich.text import Text


class _LazyConsole:
    """A rich ``Console`` made on first use: commands that print JSON never import rich."""

    def __init__(self, stderr: bool) -> None:
        self._stderr = stderr
        self._console: Console | None = None

    def _real(self) -> Console:
        if self._console is None:
            from rich.console import Console

            self._console = Console(stderr=self._stderr, highlight=False)
        return self._console

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real(), name)

    # Special methods are looked up on the type, not through __getattr__ (rich's Live does
    # `with console:` around each refresh).
    def __enter__(self) -> Console:
        return self._real().__enter__()

    def __exit__(self, *exc: object) -> None:
        self._real().__exit__(*exc)


console: Console = _LazyConsole(stderr=False)  # type: ignore[assignment]
err_console: Console = _LazyConsole(stderr=True)  # type: ignore[assignment]


class LazyChoices:
    """The allowed values of an option (argparse ``choices``) named by module and attribute,
    imported only when argparse looks at them (building the command that runs, or its help):
    listing the commands imports neither the config schema nor the process model."""

    def __init__(self, module: str, name: str) -> None:
        self.module = module
        self.name = name

    def _values(self) -> tuple[str, ...]:
        return tuple(getattr(importlib.import_module(self.module), self.name))

    def __contains__(self, value: object) -> bool:
        return value in self._values()

    def __iter__(self) -> Iterator[str]:
        return iter(self._values())


def cell(value: object, style: str = "") -> Text:
    """A table cell holding data: control characters made visible, never markup."""
    from rich.text import Text

    return Text(visible(value), style=style)


def line(*parts: object | tuple[object, str]) -> Text:
    """One line from parts: a value (shown with :func:`visible`) or ``(value, style)``."""
    from rich.text import Text

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
    from rich.text import Text

    where = f"{exc.where}: " if exc.where else ""
    message = "\n".join(visible_lines(f"{where}{exc.message}"))
    err_console.print(line(("error:", "bold red"), " "), Text(message), sep="", soft_wrap=True)
    if exc.hint:
        hint = "\n".join(visible_lines(str(exc.hint)))
        err_console.print(line("  ", ("hint:", "yellow"), " "), Text(hint), sep="", soft_wrap=True)
