"""What panes tell the app: a selection, a screen to show, a command to run, a shell to open."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from textual.message import Message
from textual.screen import Screen


class InstanceSelected(Message):
    """The instance under the cursor changed (it drives the forwards and serial panes)."""

    def __init__(self, name: str | None) -> None:
        super().__init__()
        self.name = name


class ScreenRequested(Message):
    """Show ``screen``; ``done`` gets its result when it is dismissed."""

    def __init__(self, screen: Screen[Any], done: Callable[[Any], None] | None = None) -> None:
        super().__init__()
        self.screen = screen
        self.done = done


class ActionRequested(Message):
    """Run a backend command off the UI; its result line or error becomes a notification."""

    def __init__(self, command: Coroutine[Any, Any, str]) -> None:
        super().__init__()
        self.command = command


class ShellRequested(Message):
    """Find an interactive command (``argv`` may block) and run it on the real terminal.
    ``terminal`` is the same shell as typed in a terminal (``envdeck shell dev``): what a
    dashboard without a terminal to hand over (in a browser) tells the user to run."""

    def __init__(self, argv: Callable[[], list[str]], terminal: str = "") -> None:
        super().__init__()
        self.argv = argv
        self.terminal = terminal
