"""Pane 2: containers, grouped by Docker endpoint, foreign-arch (emulated) ones marked."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import DataTable, Static

from envdeck.backend import events as ev

from ..formatting import state_text
from ..widgets.tablesync import cursor_key, sync_rows
from .base import Pane

ENDPOINT_PREFIX = "endpoint:"
IMAGE_WIDTH = 24


def shorten(text: str, width: int) -> str:
    """``text`` cut to ``width`` cells with an ellipsis."""
    return text if len(text) <= width else text[: width - 1] + "…"


class ContainersPane(Pane):
    """Endpoint header rows, then that endpoint's containers."""

    number = 2
    title = "Containers"
    pane_id = "containers"
    help_group = "Containers"
    BINDINGS = [
        Binding("S", "app.container('start')", "Start", id="container.start"),
        Binding("s", "app.container('stop')", "Stop", id="container.stop"),
        Binding("r", "app.container('restart')", "Restart", id="container.restart"),
        Binding("p", "app.container('pause')", "Pause/unpause", id="container.pause"),
        Binding("d", "app.container('remove')", "Remove", id="container.remove"),
        Binding("E", "app.shell", "Exec shell", id="container.shell"),
        Binding("l", "app.container_logs", "Logs", id="container.logs"),
        Binding("x", "app.command_menu", "Commands", id="container.commands"),
        Binding("enter", "app.details", "Details", show=False, id="container.details"),
    ]

    def compose(self) -> ComposeResult:
        """The table and an empty-state line."""
        table: DataTable = DataTable(id="containers-table", cursor_type="row")
        table.add_columns("NAME", "STATE", "PLATFORM", "IMAGE", "PORTS")
        yield table
        yield Static(id="containers-empty")
        self._cache: dict[str, tuple] = {}

    @property
    def main(self) -> DataTable:
        """The containers table."""
        return self.query_one(DataTable)

    @property
    def selected(self) -> ev.ContainerInfo | None:
        """The container under the cursor (None on an endpoint row)."""
        key = cursor_key(self.main)
        if key is None or key.startswith(ENDPOINT_PREFIX):
            return None
        endpoint, _, cid = key.partition("|")
        return self.dash.model.containers.get((endpoint, cid))

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        """Enter on a row (the table consumes the key itself): details."""
        event.stop()
        self.dash.action_details()

    def render_model(self) -> None:
        """Rows from the model."""
        model = self.dash.model
        colours = self.dash.colours
        rows = []
        count = 0
        for endpoint, containers in model.container_groups():
            rows.append(
                (
                    ENDPOINT_PREFIX + endpoint,
                    endpoint_cells(model.endpoints.get(endpoint), endpoint, colours),
                )
            )
            for c in containers:
                count += 1
                platform = Text(c.platform or "-")
                if c.emulated:
                    platform = Text(
                        f"{c.platform or '?'} emulated",
                        style=colours.get("emulated", "magenta") + " bold",
                    )
                rows.append(
                    (
                        f"{endpoint}|{c.id}",
                        (
                            Text("  " + c.name, style="bold" if c.state == "running" else ""),
                            state_text(c.state, colours),
                            platform,
                            shorten(c.image, IMAGE_WIDTH),
                            ", ".join(c.ports) or "-",
                        ),
                    )
                )
        sync_rows(self.main, rows, self._cache)
        emulated = sum(1 for c in model.containers.values() if c.emulated)
        self.set_title(f"({count}{f', {emulated} emulated' if emulated else ''})" if count else "")
        if not rows:
            if "containers" in self.dash.missing_sources:
                self.show(
                    "#containers-empty",
                    Text("Containers source not available in this build.", style="italic"),
                )
            else:
                self.show(
                    "#containers-empty",
                    Text(
                        "No Docker endpoints seen yet (waiting for the containers source).",
                        style="italic",
                    ),
                )
        else:
            self.show("#containers-empty", endpoint_problems(model.endpoints, colours))


def endpoint_cells(status: ev.EndpointStatus | None, name: str, colours: dict[str, str]) -> tuple:
    """The header row of one endpoint: name, reachability, native arch (reasons go below)."""
    title = Text(name, style="bold underline")
    if status is None:
        return (title, "", "", "", "")
    if status.reachable:
        native = f"native {status.native_arch}" if status.native_arch else ""
        return (title, Text("reachable", style=colours.get("state-ready", "")), native, "", "")
    return (title, Text("unreachable", style=colours.get("state-crashed", "")), "", "", "")


def endpoint_problems(endpoints: dict[str, ev.EndpointStatus], colours: dict[str, str]) -> Text:
    """One line per unreachable endpoint, with the reason (what the user can fix)."""
    out = Text()
    for name in sorted(endpoints):
        status = endpoints[name]
        if not status.reachable:
            if out:
                out.append("\n")
            out.append(f"{name}: ", style="bold")
            out.append(status.reason or "unreachable", style=colours.get("state-crashed", ""))
    return out
