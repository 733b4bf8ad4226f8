"""The panes that are one table (instances, containers, forwards): columns that give way by
importance, a ``/`` filter with the process filter's syntax, a one-line note under the rows,
and a height that follows how many rows they hold.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import Input, Static

from envdeck.backend.processes.view import compile_text_filter

from ..widgets.tablesync import FitTable, Row, fit_columns, sync_rows
from .base import Pane

CHROME = 3  # border (2) and the column header (1)


class ListTable(FitTable):
    """A pane's table, with the list keys of lazydocker and k9s besides the arrows."""

    BINDINGS = [
        Binding("j", "cursor_down", "Down", show=False, id="list.down"),
        Binding("k", "cursor_up", "Up", show=False, id="list.up"),
        Binding("g", "scroll_top", "First row", show=False, id="list.first"),
        Binding("G", "scroll_bottom", "Last row", show=False, id="list.last"),
    ]


class TablePane(Pane):
    """A pane of one keyed table. Subclasses name ``COLUMNS`` (left to right) and ``PRIORITY``
    (column indices, most important first) and call :meth:`show_rows` from ``render_model``."""

    COLUMNS: ClassVar[tuple[str, ...]] = ()
    PRIORITY: ClassVar[tuple[int, ...]] = ()
    note_id: ClassVar[str] = ""

    FILTER_HINT = "filter (regex; ! inverts) — Enter keeps, Esc clears"

    def compose(self) -> ComposeResult:
        """The table and the note line under it (the filter input comes when first opened)."""
        table = ListTable(id=f"{self.pane_id}-table", cursor_type="row", zebra_stripes=False)
        table.add_columns(*self.COLUMNS)
        yield table
        yield Static(id=self.note_id, classes="pane-note")
        self._cache: dict[str, tuple] = {}
        self.filter_text = ""
        self._height_need = 0

    @property
    def main(self) -> ListTable:
        """The table."""
        return self.query_one(ListTable)

    @property
    def filter_input(self) -> Input:
        """The ``/`` filter's input line (mounted when first asked for)."""
        return self.input_line(f"{self.pane_id}-filter", self.FILTER_HINT, "pane-filter")

    def show_rows(self, rows: Sequence[Row]) -> int:
        """Filter ``rows`` by the ``/`` filter (over the cells as shown), fit the columns to the
        width, show them; returns how many rows passed the filter."""
        match = compile_text_filter(self.filter_text, literal_if_invalid=True)
        if match is not None:
            rows = [r for r in rows if match(" ".join(_plain(c) for c in r[1]))]
        columns, priority = self.columns()
        sync_rows(self.main, fit_columns(self.main, columns, priority, rows), self._cache)
        self._share_height(len(rows))
        return len(rows)

    def columns(self) -> tuple[tuple[str, ...], tuple[int, ...]]:
        """The columns of the rows shown now and their priority (a pane may vary them)."""
        return self.COLUMNS, self.PRIORITY

    def filter_extra(self) -> str:
        """``/regex`` for the border title while a filter is on."""
        return f"/{self.filter_text}" if self.filter_text else ""

    def show_note(self, text: Text | str) -> None:
        """The one line under the rows (stage strip, crash reason, empty state); full text is
        in the details (Enter). Hidden when empty, so rows get the line."""
        value = Text(text) if isinstance(text, str) else text.copy()
        value.no_wrap = True
        value.overflow = "ellipsis"
        note = self.query_one(f"#{self.note_id}", Static)
        note.display = bool(value.plain)
        self.show(f"#{self.note_id}", value)

    def _share_height(self, rows: int) -> None:
        """Panes of a column share its height in proportion to what they hold (rows first)."""
        need = CHROME + max(rows, 1) + (1 if self.query_one(f"#{self.note_id}").display else 0)
        if need != self._height_need:
            self._height_need = need
            self.styles.height = f"{need}fr"

    # --- the / filter -------------------------------------------------------------------

    def action_filter(self) -> None:
        """``/``: show the filter input (the rows narrow as you type)."""
        field = self.filter_input
        field.display = True
        field.value = self.filter_text
        field.focus()

    @on(Input.Changed, ".pane-filter")
    def _filter_changed(self, event: Input.Changed) -> None:
        self.filter_text = event.value
        self.render_model()

    @on(Input.Submitted, ".pane-filter")
    def _filter_done(self, event: Input.Submitted) -> None:
        event.input.display = False
        self.main.focus()

    def on_key(self, event) -> None:  # noqa: ANN001 - textual.events.Key
        """Esc in the filter clears it."""
        field = self.opened_input(f"{self.pane_id}-filter")
        if event.key == "escape" and field is not None and field.has_focus:
            field.value = ""
            field.display = False
            self.main.focus()
            event.stop()


def _plain(cell: Text | str) -> str:
    return cell.plain if isinstance(cell, Text) else str(cell)
