"""The base of the five panes: a titled, numbered box that re-renders from the model."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.text import Text
from textual.containers import Vertical
from textual.widget import Widget
from textual.widgets import Static

if TYPE_CHECKING:
    from ..app import EnvdeckApp


class Pane(Vertical):
    """A numbered pane; ``main`` is the widget that gets focus for it."""

    ALLOW_MAXIMIZE = True
    number: int = 0
    title: str = ""
    pane_id: str = ""
    help_group: str = ""

    def __init__(self, **kwargs) -> None:  # noqa: ANN003 - Widget kwargs
        super().__init__(**kwargs)
        self._shown: dict[str, tuple] = {}

    def on_mount(self) -> None:
        """Show the pane number in the border title (``1`` focuses pane 1)."""
        self.set_title()

    def set_title(self, extra: str = "") -> None:
        """Border title: ``[N] Title  extra``."""
        self.border_title = f"[{self.number}] {self.title}" + (f"  {extra}" if extra else "")

    @property
    def main(self) -> Widget:
        """The focusable widget of the pane."""
        raise NotImplementedError

    @property
    def dash(self) -> EnvdeckApp:
        """The app, typed."""
        return self.app  # type: ignore[return-value]

    def focus_pane(self) -> None:
        """Give the pane focus."""
        self.main.focus()

    def show(self, selector: str, text: Text | str) -> None:
        """Update a Static only when its text changed (each update costs a layout pass)."""
        value = Text(text) if isinstance(text, str) else text
        key = (value.plain, tuple(value.spans), str(value.style))
        if self._shown.get(selector) != key:
            self._shown[selector] = key
            self.query_one(selector, Static).update(value)

    def render_model(self) -> None:
        """Re-render from the app's model (called on refresh ticks when dirty)."""
        raise NotImplementedError
