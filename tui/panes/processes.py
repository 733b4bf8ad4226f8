"""Pane 4: the process tree of the host (or an instance's guest), emulated processes first-class.

Its keys filter, sort, fold the tree, pause, follow, switch host/guest, signal a process (pick,
confirm), show its command line (x) and details (Enter).
"""

from __future__ import annotations

import shlex
import signal
from functools import partial
from typing import TYPE_CHECKING

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import Input

from envdeck.backend.processes.model import ProcessRow
from envdeck.backend.text import visible

from ..proctree import (
    DESCENDING_BY_DEFAULT,
    SORT_ORDER,
    TreeOptions,
    command_text,
    descendants,
    repaint_only,
    reshaped_rows,
    summarize,
    visible_rows,
)
from ..screens.fields import fields_text, human_value
from ..widgets.line import Line
from ..widgets.procview import HEADER, ProcessView, header
from .base import Pane

if TYPE_CHECKING:
    from ..context import DashContext


class ProcessesPane(Pane):
    """Summary line, column header, the line-API process view and a filter input."""

    number = 4
    title = "Processes"
    pane_id = "processes"
    help_group = "Processes"
    MUTATING = frozenset(("signal",))
    BINDINGS = [
        Binding("slash", "filter", "Filter", id="process.filter"),
        Binding("e", "emulated_only", "Emulated only", id="process.emulated"),
        Binding("t", "tree", "Tree on/off", id="process.tree"),
        Binding("plus", "expand", "Expand", show=False, id="process.expand"),
        Binding("minus", "collapse", "Collapse", show=False, id="process.collapse"),
        Binding(
            "asterisk",
            "expand_all",
            "Expand/collapse all below",
            show=False,
            id="process.expand_all",
        ),
        Binding("P", "sort('cpu')", "Sort CPU", id="process.sort_cpu"),
        Binding("M", "sort('mem')", "Sort memory", id="process.sort_mem"),
        Binding(
            "less_than_sign",
            "sort_step(-1)",
            "Sort: previous column",
            show=False,
            id="process.sort_prev",
        ),
        Binding(
            "greater_than_sign",
            "sort_step(1)",
            "Sort: next column",
            show=False,
            id="process.sort_next",
        ),
        Binding("I", "invert", "Invert sort", show=False, id="process.sort_invert"),
        Binding("k", "signal", "Signal", id="process.signal"),
        Binding("F", "follow", "Follow", show=False, id="process.follow"),
        Binding("Z", "pause", "Pause updates", show=False, id="process.pause"),
        Binding("h", "next_host", "Host/guest", id="process.host"),
        Binding("x", "command_menu", "Command line", show=False, id="process.commands"),
        Binding("enter", "details", "Details", show=False, id="process.details"),
    ]

    def __init__(self, ctx: DashContext, **kwargs) -> None:  # noqa: ANN003 - Widget kwargs
        super().__init__(ctx, **kwargs)
        self.options = TreeOptions()
        self._view_key: tuple | None = None  # the host and options the shown rows were built for
        self._shape: int | None = None  # and the shape of that host's rows
        self.host = "host"
        self.paused = False

    def compose(self) -> ComposeResult:
        """Summary, header, view (the filter input comes when first opened)."""
        yield Line(id="process-summary")
        yield Line(HEADER, id="process-header")
        yield ProcessView(id="process-view")

    def on_mount(self) -> None:
        """Highlight rules come from the config."""
        super().on_mount()
        self.main.rules = self.ctx.settings.highlight

    @property
    def main(self) -> ProcessView:
        """The process view."""
        return self.query_one(ProcessView)

    def render_model(self) -> None:
        """Re-run the tree over the snapshot (skipped while paused)."""
        model = self.ctx.model
        hosts = model.process_hosts()
        if self.host not in hosts and hosts:
            self.host = hosts[0]
        snapshot = model.processes.get(self.host, {})
        summary = self.query_one("#process-summary", Line)
        unavailable = model.processes_unavailable.get(self.host)
        if unavailable:
            summary.set(
                Text(visible(f"{self.host}: no process data — {unavailable}"), style="bold")
            )
        elif not snapshot:
            if "processes" in self.ctx.missing_sources:
                summary.set(Text("Process source not available in this build.", style="italic"))
            else:
                summary.set(Text("Waiting for the first process snapshot…", style="italic"))
        else:
            summary.set(self._summary(snapshot))
        self.query_one("#process-header", Line).set(header(self.main.cell_layout))
        if not self.paused:
            self._update_rows(snapshot)
        self.set_title(self._title_extra(len(snapshot)))

    def _update_rows(self, snapshot: dict[int, ProcessRow]) -> None:
        """Build the lines again when rows came, went or may move; then (or when only values
        that move nothing changed) repaint just the lines on screen that differ. Another host
        or option repaints everything."""
        o = self.options
        view_key = (
            self.host,
            (o.tree, o.sort, o.reverse, o.filter, o.emulated_only, frozenset(o.collapsed)),
        )
        shape = self.ctx.model.process_shapes.get(self.host)
        changes = self.ctx.model.take_process_changes(self.host)
        if view_key != self._view_key or changes.full:
            rows, changed = visible_rows(snapshot, o), None
        elif not repaint_only(changes.fields, o):
            rows, changed = visible_rows(snapshot, o), changes.pids
        elif shape != self._shape:
            patched = reshaped_rows(self.main.rows, snapshot, changes.added, changes.removed, o)
            rows = visible_rows(snapshot, o) if patched is None else patched
            changed = changes.pids
        elif changes.pids:
            rows, changed = self.main.rows, changes.pids  # (the model's rows, changed in place)
        else:
            return
        self._view_key, self._shape = view_key, shape
        self.main.set_rows(rows, changed)

    def _summary(self, snapshot: dict[int, ProcessRow]) -> Text:
        count, emulated_cpu, total_cpu = summarize(snapshot)
        out = Text()
        noun = "process" if count == 1 else "processes"
        out.append(
            f"{count} emulated {noun} · {emulated_cpu:.0f} % CPU",
            style=self.ctx.colours.get("emulated", "") + " bold" if count else "",
        )
        out.append(f"   ({len(snapshot)} processes · {total_cpu:.0f} % CPU total)", style="dim")
        return out

    def _title_extra(self, total: int) -> str:
        o = self.options
        parts = [self.host, f"{total}"]
        parts.append("tree" if o.tree else "flat")
        parts.append(f"sort {o.sort}{' ↓' if o.reverse else ' ↑'}")
        if o.emulated_only:
            parts.append("emulated only")
        if o.filter:
            parts.append(f"/{o.filter}")
        if self.main.follow:
            parts.append("follow")
        if self.paused:
            parts.append("PAUSED")
        return " · ".join(parts)

    def _changed(self) -> None:
        """An option changed: show it now, not at the next tick."""
        self.render_model()

    # --- actions ------------------------------------------------------------------------

    def action_filter(self) -> None:
        """Show the filter input."""
        field = self.input_line(
            "process-filter", "filter (regex; ! inverts) — Enter keeps, Esc clears"
        )
        field.display = True
        field.value = self.options.filter
        field.focus()

    @on(Input.Changed, "#process-filter")
    def _filter_changed(self, event: Input.Changed) -> None:
        self.options.filter = event.value
        self._changed()

    @on(Input.Submitted, "#process-filter")
    def _filter_done(self, event: Input.Submitted) -> None:
        event.input.display = False
        self.main.focus()

    def on_key(self, event) -> None:  # noqa: ANN001 - textual.events.Key
        """Esc in the filter clears it."""
        field = self.opened_input("process-filter")
        if event.key == "escape" and field is not None and field.has_focus:
            field.value = ""
            field.display = False
            self.main.focus()
            event.stop()

    def action_emulated_only(self) -> None:
        """Only emulated processes (and their ancestors in tree mode)."""
        self.options.emulated_only = not self.options.emulated_only
        self._changed()

    def action_tree(self) -> None:
        """Tree or flat list."""
        self.options.tree = not self.options.tree
        self._changed()

    def _selected_pid(self) -> int | None:
        row = self.main.selected
        return row["pid"] if row else None

    def action_expand(self) -> None:
        """Expand the selected subtree."""
        pid = self._selected_pid()
        if pid is not None:
            self.options.collapsed.discard(pid)
            self._changed()

    def action_collapse(self) -> None:
        """Collapse the selected subtree."""
        pid = self._selected_pid()
        if pid is not None:
            self.options.collapsed.add(pid)
            self._changed()

    def action_expand_all(self) -> None:
        """Toggle: collapse everything below the selection, or expand it all."""
        pid = self._selected_pid()
        if pid is None:
            return
        below = descendants(self.ctx.model.processes.get(self.host, {}), pid) | {pid}
        if below & self.options.collapsed:
            self.options.collapsed -= below
        else:
            self.options.collapsed |= below
        self._changed()

    def action_sort(self, key: str) -> None:
        """Sort by ``key`` (pressing it again inverts)."""
        if self.options.sort == key:
            self.options.reverse = not self.options.reverse
        else:
            self.options.sort = key
            self.options.reverse = key in DESCENDING_BY_DEFAULT
        self._changed()

    def action_sort_step(self, step: int) -> None:
        """Sort by the previous/next column."""
        index = (SORT_ORDER.index(self.options.sort) + step) % len(SORT_ORDER)
        self.options.sort = SORT_ORDER[index]
        self.options.reverse = self.options.sort in DESCENDING_BY_DEFAULT
        self._changed()

    def action_invert(self) -> None:
        """Invert the sort order."""
        self.options.reverse = not self.options.reverse
        self._changed()

    def action_follow(self) -> None:
        """Keep the cursor on the selected process as rows move."""
        self.main.follow = not self.main.follow
        self._changed()

    def action_pause(self) -> None:
        """Freeze the list (the model keeps updating underneath)."""
        self.paused = not self.paused
        if self.paused:  # a still picture: the model updates its rows in place
            self.main.set_rows([line._replace(row=line.row.copy()) for line in self.main.rows])
        self._view_key = None
        self._changed()

    def action_next_host(self) -> None:
        """Cycle host → each instance's guest."""
        hosts = self.ctx.model.process_hosts()
        if len(hosts) < 2:
            self.notify("Only the host's processes are available.", timeout=3)
            return
        self.host = (
            hosts[(hosts.index(self.host) + 1) % len(hosts)] if self.host in hosts else hosts[0]
        )
        self._changed()

    def action_signal(self) -> None:
        """Pick a signal (TERM first), confirm, send — to a host process, or in the guest view
        to the guest's process (over SSH, as ``envdeck kill --instance``)."""
        from envdeck.backend.processes.guest import GUEST_SIGNALS

        from ..screens.modals import SIGNALS, ConfirmScreen, PickScreen, signal_options

        row = self.main.selected
        if row is None:
            self.warn("No process selected.")
            return
        pid, what = row["pid"], command_text(row)[:60]
        guest = self.host if self.host != "host" else None
        start = row.get("start_ticks") if guest else row.get("start_time")
        if start is None:
            self.warn(f"The start time of {pid} is unknown: refresh and pick it again.")
            return
        backend = self.ctx.backend
        where = f" in {guest}" if guest else ""
        options = signal_options([n for n in SIGNALS if n in GUEST_SIGNALS] if guest else SIGNALS)

        def picked(number: str | None) -> None:
            if number is None:
                return
            label = dict(options)[number]

            def confirmed(yes: bool | None) -> None:
                if not yes:
                    return
                if guest:
                    name = signal.Signals(int(number)).name.removeprefix("SIG")
                    self.run_command(backend.send_guest_signal(guest, pid, int(start), name))
                else:
                    self.run_command(backend.send_signal(pid, start, int(number)))

            self.show_screen(
                ConfirmScreen(f"Send {label} to {pid}{where}?", what, "Send"), confirmed
            )

        self.show_screen(
            PickScreen(f"Signal for {pid}{where} {what}", options, "Enter picks · Esc cancels"),
            picked,
        )

    def action_command_menu(self) -> None:
        """``x``: the selected process's command line (and how an emulated one runs)."""
        from ..screens.modals import TextScreen

        row = self.main.selected
        if row is not None:
            self.show_screen(
                TextScreen(
                    f"Process {row['pid']}", process_text(row, self.ctx.clock()), id="command"
                )
            )

    def action_details(self) -> None:
        """Enter: command line and every field of the selected process."""
        from ..screens.details import DetailScreen

        row = self.main.selected
        if row is not None:
            tabs = [
                ("Command", partial(process_text, row, self.ctx.clock())),
                ("Details", partial(fields_text, row, now=self.ctx.clock())),
            ]
            self.show_screen(DetailScreen(f"process {row['pid']}", tabs))


def process_text(row: ProcessRow, now: float) -> Text:
    """Command line, emulation (arch, interpreter, as run), user, container, state, start
    (every value shown with its control characters visible, a newline as ``\\n``)."""
    out = Text()
    out.append("cmdline: ", style="bold")
    out.append(visible(shlex.join(row.get("cmdline") or [])) + "\n")
    emulated = row.get("emulated")
    if emulated:
        out.append("emulated: ", style="bold")
        out.append(visible(f"{emulated.get('arch')} via {emulated.get('interpreter')}") + "\n")
        out.append("as run:   ", style="bold")
        out.append(visible(command_text(row)) + "\n")
    for key in ("user", "container", "state", "start_time"):
        if row.get(key) is not None:
            out.append(f"{key}: ", style="bold")
            out.append(visible(human_value(key, row[key], now)) + "\n")
    return out
