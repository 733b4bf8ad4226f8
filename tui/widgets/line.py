"""A one-line text widget that repaints without a layout pass, and only when its text changed.

``Static.update`` asks for a layout refresh every time (it may change size); for lines that
change every second (header, process summary) that cost ~20 ms per update on our machines.
"""

from __future__ import annotations

from rich.text import Text
from textual.widget import Widget


class Line(Widget):
    """Fixed-height text; ``set`` repaints only on change."""

    DEFAULT_CSS = """
    Line {
        height: 1;
    }
    """

    def __init__(self, text: str | Text = "", *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._text = Text(text) if isinstance(text, str) else text

    def set(self, text: str | Text) -> None:
        """Show ``text`` (no-op when unchanged)."""
        value = Text(text) if isinstance(text, str) else text
        if (
            value.plain == self._text.plain
            and value.spans == self._text.spans
            and value.style == self._text.style
        ):
            return
        self._text = value
        self.refresh()

    @property
    def text(self) -> Text:
        """What the line shows."""
        return self._text

    def render(self) -> Text:
        """The text, cut to the width."""
        return self._text
