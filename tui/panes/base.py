"""The base of the five panes: a titled, numbered box that re-renders from the model.

A pane owns its keys and what they do. It reads the :class:`~envdeck.tui.context.DashContext`
the app gives it and tells the app what happened with messages (never calling up into it).
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any, ClassVar

from rich.text import Text
from textual import events, on
from textual.containers import Vertical
from textual.screen import Screen
from textual.widget import Widget
from textual.widgets import Input, Static
from textual.worker import Worker, WorkerState

from envdeck.backend.text import visible

from ..context import DashContext
from ..messages import ActionRequested, ScreenRequested


class Pane(Vertical):
    """A numbered pane; ``main`` is the widget that gets focus for it."""

    ALLOW_MAXIMIZE = True
    number: int = 0
    title: str = ""
    pane_id: str = ""
    help_group: str = ""
    MUTATING: ClassVar[frozenset[str]] = frozenset()  # actions read-only mode disables

    def __init__(self, ctx: DashContext, **kwargs) -> None:  # noqa: ANN003 - Widget kwargs
        super().__init__(**kwargs)
        self.ctx = ctx
        self._shown: dict[str, tuple] = {}
        self._title: str | None = None

    def on_mount(self) -> None:
        """Show the pane number in the border title (``1`` focuses pane 1)."""
        self.set_title()

    def set_title(self, extra: str = "") -> None:
        """Border title: ``[N] Title  extra`` (``extra`` may quote data: shown as text)."""
        title = f"[{self.number}] {self.title}" + (f"  {extra}" if extra else "")
        if title != self._title:  # (setting it repaints the whole pane, children and all)
            self._title = title
            self.border_title = Text(visible(title))

    @property
    def main(self) -> Widget:
        """The focusable widget of the pane."""
        raise NotImplementedError

    def focus_pane(self) -> None:
        """Give the pane focus now (``focus()`` lands later: a key pressed right after ``1``-``5``
        would still go to the pane focused before)."""
        if self.screen is self.app.screen:
            self.screen.set_focus(self.main)
        else:
            self.main.focus()

    def input_line(self, input_id: str, placeholder: str, classes: str = "") -> Input:
        """The input line ``#input_id`` docked at the pane's foot (a filter, a search), mounted
        the first time it is opened: the first frame builds none of them."""
        field = self.opened_input(input_id)
        if field is None:
            field = Input(placeholder=placeholder, id=input_id, classes=classes)
            self.mount(field)
        return field

    def opened_input(self, input_id: str) -> Input | None:
        """The input line ``#input_id`` if it was ever opened."""
        return next(iter(self.query(f"#{input_id}").results(Input)), None)

    def on_resize(self, _event: events.Resize) -> None:
        """A new size may fit more or fewer columns: render again on the next tick."""
        self.ctx.model.dirty.add(self.pane_id)

    def show(self, selector: str, text: Text | str) -> None:
        """Update a Static only when its text changed (each update costs a layout pass)."""
        value = Text(text) if isinstance(text, str) else text
        key = (value.plain, tuple(value.spans), str(value.style))
        if self._shown.get(selector) != key:
            self._shown[selector] = key
            self.query_one(selector, Static).update(value)

    def render_model(self) -> None:
        """Re-render from the model (called on refresh ticks when dirty)."""
        raise NotImplementedError

    # --- telling the app ----------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Read-only mode: actions that change things show greyed out and do nothing."""
        if self.ctx.readonly and action in self.MUTATING:
            return None
        return True

    def show_screen(self, screen: Screen[Any], done: Callable[[Any], None] | None = None) -> None:
        """Ask the app to show ``screen`` (safe from a worker thread too)."""
        self.post_message(ScreenRequested(screen, done))

    def run_command(self, command: Coroutine[Any, Any, str]) -> None:
        """Ask the app to run a backend command in a worker."""
        self.post_message(ActionRequested(command))

    def warn(self, text: str) -> None:
        """A warning notification (nothing selected, wrong pane ...); ``text`` is never markup."""
        self.notify(visible(text), severity="warning", markup=False)

    @on(Worker.StateChanged)
    def _lookup_failed(self, event: Worker.StateChanged) -> None:
        """A pane's own thread work (a lookup, a save) failed: say so."""
        if event.state == WorkerState.ERROR:
            error = event.worker.error
            self.notify(
                visible(str(error) or error.__class__.__name__),
                title="action failed",
                severity="error",
                timeout=8,
                markup=False,
            )
