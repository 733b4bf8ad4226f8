"""Pane 1: instances — state, arch, accel, size, ssh port, uptime; boot stages while booting."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import DataTable, Static

from envdeck.backend import events as ev

from ..formatting import duration, human_bytes, same_arch, state_text
from ..widgets.tablesync import cursor_key, sync_rows
from .base import Pane

STAGE_MARK = {"done": "✓", "running": "…", "failed": "✗", "stalled": "!"}
CRASH_LINES = 5


class InstancesPane(Pane):
    """Every instance; the one under the cursor drives the forwards and serial panes."""

    number = 1
    title = "Instances"
    pane_id = "instances"
    help_group = "Instances"
    BINDINGS = [
        Binding("S", "app.instance('start')", "Start", id="instance.start"),
        Binding("s", "app.instance('stop')", "Stop", id="instance.stop"),
        Binding("r", "app.instance('restart')", "Restart", id="instance.restart"),
        Binding("p", "app.instance('pause')", "Pause/resume", id="instance.pause"),
        Binding("d", "app.instance('delete')", "Delete", id="instance.delete"),
        Binding("E", "app.shell", "Shell", id="instance.shell"),
        Binding("a", "app.focus_pane(5)", "Serial", id="instance.serial"),
        Binding("l", "app.focus_pane(5)", "Logs", show=False, id="instance.logs"),
        Binding("f", "app.focus_pane(3)", "Forwards", id="instance.forwards"),
        Binding("F", "app.new_forward", "New forward", show=False, id="instance.new_forward"),
        Binding("n", "app.create_tiny", "New tiny", id="instance.new"),
        Binding("x", "app.command_menu", "Commands", id="instance.commands"),
        Binding("enter", "app.details", "Details", show=False, id="instance.details"),
    ]

    def compose(self) -> ComposeResult:
        """A table and a detail line (stages, crash reason, empty state)."""
        table: DataTable = DataTable(id="instances-table", cursor_type="row", zebra_stripes=False)
        table.add_columns("NAME", "STATE", "ARCH", "ACCEL", "CPU", "MEM", "SSH", "UP")
        yield table
        yield Static(id="instances-detail")
        self._cache: dict[str, tuple] = {}

    @property
    def main(self) -> DataTable:
        """The instances table."""
        return self.query_one(DataTable)

    @property
    def selected(self) -> str | None:
        """The instance under the cursor."""
        return cursor_key(self.main)

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        """Tell the app which instance is selected."""
        if event.row_key is not None and event.row_key.value:
            self.dash.select_instance(event.row_key.value)

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        """Enter on a row (the table consumes the key itself): details."""
        event.stop()
        self.dash.action_details()

    def render_model(self) -> None:
        """Rows from the model; the detail line for the selected instance."""
        model = self.dash.model
        colours = self.dash.colours
        now = self.dash.clock()
        rows = []
        for name in sorted(model.instances):
            s = model.instances[name]
            accel = s.accel or "-"
            if not same_arch(s.arch):
                accel = f"{accel} emulated" if s.accel else "emulated"
            up = duration(now - s.started_at) if s.started_at and s.state != "stopped" else "-"
            rows.append(
                (
                    name,
                    (
                        Text(name, style="bold"),
                        state_text(s.state, colours),
                        s.arch,
                        accel,
                        str(s.cpus),
                        human_bytes(s.memory_bytes or None),
                        str(s.ssh_port or "-"),
                        up,
                    ),
                )
            )
        fresh = self.main.row_count == 0
        sync_rows(self.main, rows, self._cache)
        if fresh and rows:  # first rows: start on the first instance that is not stopped
            live = [i for i, (n, _) in enumerate(rows) if model.instances[n].state != "stopped"]
            self.main.move_cursor(row=live[0] if live else 0, animate=False)
        self.set_title(f"({len(rows)})" if rows else "")
        selected = self.selected
        if self.dash.selected_instance != selected:
            self.dash.select_instance(selected)
        self.show("#instances-detail", self._detail(selected))

    def _detail(self, name: str | None) -> Text:
        model = self.dash.model
        if not model.instances:
            if "instances" in self.dash.missing_sources:
                return Text("Instances source not available in this build.", style="italic")
            return Text("No instances. Press n to create the 'tiny' instance.", style="italic")
        if name is None or name not in model.instances:
            return Text("")
        status = model.instances[name]
        out = Text()
        colours = self.dash.colours
        if status.state in ("crashed", "degraded") and status.reason:
            out.append(f"{status.state}: ", style=colours.get("state-crashed", "red"))
            out.append(status.reason + "\n")
        if status.state == "crashed":
            for line in list(model.serial.get(name, ()))[-CRASH_LINES:]:
                out.append("  │ " + line + "\n", style="dim")
        stages = model.ordered_stages(name)
        if stages and status.state in ("crashed", "degraded"):
            problems = [s for s in stages if s.status != "done"]
            done = len(stages) - len(problems)
            out.append(f"✓ {done} stage{'s' if done != 1 else ''} done  ")
            out.append_text(stage_line(problems))
        elif stages and status.state in ("starting", "booting", "ready"):
            out.append_text(stage_line(stages))
        messages = model.messages.get(name)
        if messages and messages[-1].level in ("warning", "error"):
            last = messages[-1]
            out.append(f"\n{last.level}: {last.text}", style="bold")
        return out


def stage_line(stages: list[ev.BootStage]) -> Text:
    """``✓ qemu started 0.1s  ✓ kernel booted 2.3s  … ssh port open``."""
    out = Text()
    for index, stage in enumerate(stages):
        if index:
            out.append("  ")
        mark = STAGE_MARK.get(stage.status, "?")
        style = {"failed": "bold red", "stalled": "bold yellow", "running": "italic"}.get(
            stage.status, ""
        )
        out.append(f"{mark} {stage.stage} {stage.elapsed_s:.1f}s", style=style)
        if stage.detail and stage.status in ("failed", "stalled"):
            out.append(f" ({stage.detail})", style=style)
    return out
