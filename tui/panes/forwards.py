"""Pane 3: the port forwards of the selected instance — guest → host, source, state, bytes."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import DataTable, Static

from envdeck.backend import events as ev

from ..formatting import human_bytes, state_text
from ..widgets.tablesync import cursor_key, sync_rows
from .base import Pane


class ForwardsPane(Pane):
    """Forwards of ``app.selected_instance``."""

    number = 3
    title = "Forwards"
    pane_id = "forwards"
    help_group = "Forwards"
    BINDINGS = [
        Binding("w", "app.open_forward", "Open in browser", id="forward.open"),
        Binding("F", "app.new_forward", "New forward", id="forward.new"),
        Binding("d", "app.remove_forward", "Remove", id="forward.remove"),
        Binding("enter", "app.details", "Details", show=False, id="forward.details"),
    ]

    def compose(self) -> ComposeResult:
        """The table and an empty-state line."""
        table: DataTable = DataTable(id="forwards-table", cursor_type="row")
        table.add_columns("GUEST", "HOST", "SOURCE", "STATE", "CONN", "IN", "OUT")
        yield table
        yield Static(id="forwards-empty")
        self._cache: dict[str, tuple] = {}

    @property
    def main(self) -> DataTable:
        """The forwards table."""
        return self.query_one(DataTable)

    @property
    def selected(self) -> ev.ForwardStatus | None:
        """The forward under the cursor."""
        key = cursor_key(self.main)
        name = self.dash.selected_instance
        if key is None or name is None:
            return None
        return self.dash.model.forwards.get(name, {}).get(key)

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        """Enter on a row (the table consumes the key itself): details."""
        event.stop()
        self.dash.action_details()

    def render_model(self) -> None:
        """Rows for the selected instance."""
        name = self.dash.selected_instance
        forwards = self.dash.model.forwards.get(name or "", {})
        colours = self.dash.colours
        rows = []
        for guest in sorted(forwards, key=lambda g: (not g.isdigit(), g.zfill(6))):
            f = forwards[guest]
            state = state_text(f.state, colours)
            if f.reason and f.state != "active":
                state.append(f" ({f.reason})")
            rows.append(
                (
                    guest,
                    (
                        f.guest,
                        f.host,
                        f.source,
                        state,
                        str(f.connections),
                        human_bytes(f.bytes_in),
                        human_bytes(f.bytes_out),
                    ),
                )
            )
        sync_rows(self.main, rows, self._cache)
        self.set_title(f"{name}" if name else "")
        if name is None:
            self.show(
                "#forwards-empty", Text("Select an instance to see its forwards.", style="italic")
            )
        elif not rows:
            self.show(
                "#forwards-empty",
                Text(
                    f"{name} has no forwards (its guest listens on no TCP port yet).",
                    style="italic",
                ),
            )
        else:
            self.show("#forwards-empty", "")
