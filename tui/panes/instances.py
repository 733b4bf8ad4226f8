"""Pane 1: instances — state, arch, accel, size, recent CPU (a sparkline of QEMU's host CPU) and
memory in use, ssh port, uptime; boot stages while booting.

Its keys start, stop, restart, pause/resume and delete the selected instance, open a shell in
its guest, add a forward, create the tiny instance, show its commands (x) and details (Enter).
"""

from __future__ import annotations

import shlex
from collections.abc import Iterable
from functools import partial
from typing import TYPE_CHECKING

from rich.text import Text
from textual import work
from textual.binding import Binding
from textual.message import Message
from textual.widgets import DataTable

from envdeck.backend import events as ev
from envdeck.backend.api import Backend
from envdeck.backend.stats.ring import History, instance_subject
from envdeck.backend.text import visible

from ..formatting import duration, human_bytes, plain, plain_lines, same_arch, state_text
from ..messages import InstanceSelected, ShellRequested
from ..screens.fields import LiveTab, Loader, fields_text
from ..widgets.sparkline import cpu_cell, memory_cell
from ..widgets.tablesync import cursor_key
from .forwards import ask_new_forward
from .table import TablePane

if TYPE_CHECKING:
    from ..screens.create import NewInstance

CRASH_LINES = 5
STAGE_MARK = {"done": "✓", "running": "…", "failed": "✗", "stalled": "!"}


class InstancesPane(TablePane):
    """Every instance; the one under the cursor drives the forwards and serial panes."""

    number = 1
    title = "Instances"
    pane_id = "instances"
    help_group = "Instances"
    MUTATING = frozenset(
        ("start", "stop", "restart", "pause", "delete", "shell", "new_forward", "create")
    )
    BINDINGS = [
        Binding("S", "start", "Start", id="instance.start"),
        Binding("s", "stop", "Stop", id="instance.stop"),
        Binding("r", "restart", "Restart", id="instance.restart"),
        Binding("p", "pause", "Pause/resume", id="instance.pause"),
        Binding("d", "delete", "Delete", id="instance.delete"),
        Binding("E", "shell", "Shell", id="instance.shell"),
        Binding("a", "app.focus_pane(5)", "Serial", id="instance.serial"),
        Binding("l", "app.focus_pane(5)", "Logs", show=False, id="instance.logs"),
        Binding("f", "app.focus_pane(3)", "Forwards", id="instance.forwards"),
        Binding("F", "new_forward", "New forward", show=False, id="instance.new_forward"),
        Binding("n", "create", "New instance", id="instance.new"),
        Binding("x", "command_menu", "Commands", id="instance.commands"),
        Binding("enter", "details", "Details", show=False, id="instance.details"),
        Binding("slash", "filter", "Filter", show=False, id="instance.filter"),
    ]

    COLUMNS = ("NAME", "STATE", "ARCH", "ACCEL", "CPU", "MEM", "SSH", "UP")
    PRIORITY = (0, 1, 3, 6, 2, 7, 5, 4)  # name, state, accel (emulated?), ssh port first
    # While some instance has resource figures: its recent CPU and memory in use, ahead of the
    # configured size (no figures, no empty graph columns).
    GRAPH_COLUMNS = ("NAME", "STATE", "ARCH", "ACCEL", "CPU", "MEM", "LOAD", "USED", "SSH", "UP")
    GRAPH_PRIORITY = (0, 1, 3, 8, 6, 7, 2, 9, 5, 4)
    GRAPH_CELLS = (6, 7)
    graphs = False
    note_id = "instances-detail"
    progress_text = ""  # a create's current step

    def columns(self) -> tuple[tuple[str, ...], tuple[int, ...]]:
        """With the graph columns while some instance has figures."""
        if self.graphs:
            return self.GRAPH_COLUMNS, self.GRAPH_PRIORITY
        return self.COLUMNS, self.PRIORITY

    @property
    def selected(self) -> str | None:
        """The instance under the cursor."""
        return cursor_key(self.main)

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        """Tell the app which instance is selected."""
        if event.row_key is not None and event.row_key.value:
            self.post_message(InstanceSelected(event.row_key.value))

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        """Enter on a row (the table consumes the key itself): details."""
        event.stop()
        self.action_details()

    def render_model(self) -> None:
        """Rows from the model; the detail line for the selected instance."""
        model = self.ctx.model
        colours = self.ctx.colours
        now = self.ctx.clock()
        rows: list[tuple[str, tuple[Text | str, ...]]] = []
        for name in sorted(model.instances):
            s = model.instances[name]
            accel = s.accel or "-"
            if not same_arch(s.arch):
                accel = f"{accel} emulated" if s.accel else "emulated"
            up = duration(now - s.started_at) if s.started_at and s.state != "stopped" else "-"
            running = s.state not in ("stopped", "crashed", "suspended")
            rows.append(
                (
                    name,
                    (
                        plain(name, "bold"),
                        state_text(s.state, colours),
                        plain(s.arch),
                        plain(accel),
                        str(s.cpus),
                        human_bytes(s.memory_bytes or None),
                        cpu_cell(model.stats, instance_subject(name)) if running else "-",
                        memory_cell(model.stats, instance_subject(name)) if running else "-",
                        str(s.ssh_port or "-"),
                        up,
                    ),
                )
            )
        self.graphs = any(model.stats.values(instance_subject(n), "cpu_percent") for n, _ in rows)
        if not self.graphs:
            rows = [
                (n, tuple(c for i, c in enumerate(r) if i not in self.GRAPH_CELLS)) for n, r in rows
            ]
        fresh = self.main.row_count == 0
        shown = self.show_rows(rows)
        if fresh and rows and not self.filter_text:  # first rows: the first one not stopped
            live = [i for i, (n, _) in enumerate(rows) if model.instances[n].state != "stopped"]
            self.main.move_cursor(row=live[0] if live else 0, animate=False)
        count = f"({shown}/{len(rows)})" if self.filter_text else f"({len(rows)})"
        self.set_title(" ".join(p for p in (count if rows else "", self.filter_extra()) if p))
        selected = self.selected
        if self.ctx.selected_instance != selected:
            self.post_message(InstanceSelected(selected))
        self.show_note(self._detail(selected))

    def _detail(self, name: str | None) -> Text:
        """One line (rows come first): a create in progress, else the crash reason, else the last
        warning, else the boot stages in short; the full text is in the details (Enter)."""
        if self.progress_text:
            return plain(self.progress_text, "bold")
        model = self.ctx.model
        if not model.instances:
            if "instances" in self.ctx.missing_sources:
                return Text("Instances source not available in this build.", style="italic")
            return Text("No instances. Press n to create one.", style="italic")
        if name is None or name not in model.instances:
            return Text("")
        status = model.instances[name]
        colours = self.ctx.colours
        out = Text()
        if status.state in ("crashed", "degraded") and status.reason:
            out.append(f"{status.state}: ", style=colours.get("state-crashed", "red"))
            out.append(visible(status.reason))
        messages = model.messages.get(name)
        if not out and messages and messages[-1].level in ("warning", "error"):
            last = messages[-1]
            out.append(visible(f"{last.level}: {last.text}"), style="bold")
        stages = model.ordered_stages(name)
        if stages and status.state in ("crashed", "degraded", "starting", "booting", "ready"):
            if out:
                out.append("  ")
            out.append_text(stage_summary(stages))
        if out:
            out.append("  (Enter: details)", style="dim")
        return out

    # --- actions ------------------------------------------------------------------------

    def _selected_or_warn(self) -> str | None:
        name = self.selected
        if name is None:
            self.warn("No instance selected.")
        return name

    def action_start(self) -> None:
        """Start the selected instance."""
        if name := self._selected_or_warn():
            self.run_command(self.ctx.backend.start_instance(name))

    def action_stop(self) -> None:
        """Stop the selected instance."""
        if name := self._selected_or_warn():
            self.run_command(self.ctx.backend.stop_instance(name))

    def action_restart(self) -> None:
        """Restart the selected instance."""
        if name := self._selected_or_warn():
            self.run_command(self.ctx.backend.restart_instance(name))

    def action_pause(self) -> None:
        """Pause the selected instance; resume it when it is paused."""
        if name := self._selected_or_warn():
            status = self.ctx.model.instances.get(name)
            backend = self.ctx.backend
            paused = status is not None and status.state == "paused"
            self.run_command(
                backend.resume_instance(name) if paused else backend.pause_instance(name)
            )

    def action_delete(self) -> None:
        """Delete the selected instance (asks first, Cancel preselected)."""
        from ..screens.modals import ConfirmScreen

        name = self._selected_or_warn()
        if name is None:
            return
        backend = self.ctx.backend

        def confirmed(yes: bool | None) -> None:
            if yes:
                self.run_command(backend.delete_instance(name, force=True))

        self.show_screen(
            ConfirmScreen(
                f"Delete instance {name}?",
                "Its disk and state are removed; this cannot be undone.",
                "Delete",
            ),
            confirmed,
        )

    def action_create(self, name: str = "") -> None:
        """``n`` (``:create NAME``): ask for a name, template and size, then create the
        instance and start it; the note under the rows shows the progress (an image build)."""
        from ..screens.create import DEFAULT_NAME, CreateScreen  # (loads config)

        if self.ctx.readonly:
            self.warn("Read-only: nothing is created.")
            return

        def chosen(new: NewInstance | None) -> None:
            if new is not None:
                self.run_command(self._create_and_start(new))

        taken = set(self.ctx.model.instances)
        self.show_screen(CreateScreen(taken, name or DEFAULT_NAME), chosen)

    async def _create_and_start(self, new: NewInstance) -> str:
        backend = self.ctx.backend
        self._progress(f"creating {new.name} ({new.template})…")
        try:
            await backend.create_instance(
                new.name,
                template=new.template,
                cpus=new.cpus,
                memory_bytes=new.memory_bytes,
                progress=lambda step, done: self._progress(
                    f"creating {new.name}: {step}" + (f" {done:.0%}" if done is not None else "")
                ),
            )
            self._progress(f"starting {new.name}…")
            await backend.start_instance(new.name)
        finally:
            self._progress("")
        return f"created and started {new.name}"

    def _progress(self, text: str) -> None:
        """Show a create's progress in the note (called from the backend's thread too)."""
        self.post_message(self.Progress(text))

    class Progress(Message):
        """A step of creating an instance (posted from any thread)."""

        def __init__(self, text: str) -> None:
            super().__init__()
            self.text = text

    def on_instances_pane_progress(self, message: Progress) -> None:
        """Keep the step for the note; render it on the next tick."""
        self.progress_text = message.text
        self.ctx.model.dirty.add(self.pane_id)

    def action_shell(self) -> None:
        """Suspend the dashboard, SSH into the guest, come back."""
        if name := self._selected_or_warn():
            argv = partial(self.ctx.backend.instance_shell_argv, name)
            self.post_message(ShellRequested(argv, f"envdeck shell {name}"))

    def action_new_forward(self) -> None:
        """Ask for GUEST[:HOST] and add that forward to the selected instance."""
        ask_new_forward(self)

    def action_command_menu(self) -> None:
        """``x``: an action menu (as ``x`` on a container), each line with its literal command;
        Enter runs one (the QEMU line shows the whole command line)."""
        if name := self._selected_or_warn():
            self._show_commands(name)

    @work(thread=True, group="lookups", exit_on_error=False)
    def _show_commands(self, name: str) -> None:
        """Look the shell and QEMU command lines up off the UI, then show the menu."""
        from ..screens.modals import PickScreen, TextScreen

        backend = self.ctx.backend
        status = self.ctx.model.instances.get(name)
        pause = "resume" if status is not None and status.state == "paused" else "pause"
        options = [
            (verb, f"{verb:<8} envdeck {verb} {shlex.quote(name)}")
            for verb in ("start", "stop", "restart", pause)
        ]
        options.append(("delete", f"{'delete':<8} envdeck delete --force {shlex.quote(name)}"))
        for verb, lookup in (
            ("shell", backend.instance_shell_argv),
            ("qemu", backend.instance_qemu_argv),
        ):
            try:
                options.append((verb, f"{verb:<8} {shlex.join(lookup(name))}"))
            except Exception as exc:  # noqa: BLE001 - shown in the menu
                options.append((verb, f"{verb:<8} not available — {exc}"))
        runs = {
            "start": self.action_start,
            "stop": self.action_stop,
            "restart": self.action_restart,
            "pause": self.action_pause,
            "resume": self.action_pause,
            "delete": self.action_delete,
            "shell": self.action_shell,
            "qemu": lambda: self.show_screen(
                TextScreen(f"Commands of {name}", plain_lines(commands_text(backend, name)))
            ),
        }

        def picked(verb: str | None) -> None:
            if verb is not None:
                runs[verb]()

        self.show_screen(PickScreen(f"instance {name}", options, "Enter runs · Esc closes"), picked)

    def action_details(self) -> None:
        """Enter: status, boot stages, config and commands, in tabs."""
        from ..screens.details import DetailScreen
        from ..widgets.charts import Charts

        name = self.selected
        if name not in self.ctx.model.instances:
            return
        status = self.ctx.model.instances[name]
        backend = self.ctx.backend
        now = self.ctx.clock()
        tabs: list[tuple[str, Loader | LiveTab]] = [
            (
                "Status",
                partial(status_text, status, list(self.ctx.model.serial.get(name, ())), now),
            ),
            ("Boot stages", partial(stages_text, self.ctx.model.ordered_stages(name))),
            ("Config", partial(backend.instance_config_text, name)),
            ("Commands", partial(commands_text, backend, name)),
            ("Graphs", LiveTab(partial(Charts, self._history, instance_subject(name)))),
        ]
        self.show_screen(DetailScreen(f"instance {name}", tabs))

    def _history(self) -> History:
        """The model's sample history (the graphs read it each second)."""
        return self.ctx.model.stats


def status_text(status: ev.InstanceStatus, serial: Iterable[str], now: float) -> Text:
    """The status fields; after a crash, the last serial lines too."""
    out = fields_text(status, now=now)
    if status.state == "crashed":
        out.append("\nlast serial lines:\n", style="bold")
        for line in list(serial)[-CRASH_LINES:]:
            out.append("  │ " + visible(line, keep_tabs=True) + "\n", style="dim")
    return out


def commands_text(backend: Backend, name: str) -> str:
    """The instance's literal QEMU and shell command lines (each may be unavailable)."""
    parts = []
    for title, argv in (
        ("QEMU", backend.instance_qemu_argv),
        ("Shell", backend.instance_shell_argv),
    ):
        try:
            parts.append(f"{title}:\n  {shlex.join(argv(name))}")
        except Exception as exc:  # noqa: BLE001 - shown to the user
            parts.append(f"{title}: not available — {exc}")
    return "\n\n".join(parts)


def stages_text(stages: list[ev.BootStage]) -> Text:
    """One boot stage per line: mark, name, seconds since start, detail."""
    if not stages:
        return Text("no boot stages seen since the dashboard started", style="italic")
    return Text(
        "\n".join(
            visible(
                f"{STAGE_MARK.get(s.status, '?')} {s.stage:<22} {s.elapsed_s:6.1f}s  {s.status}"
                + (f"  {s.detail}" if s.detail else "")
            )
            for s in stages
        )
    )


def stage_summary(stages: list[ev.BootStage]) -> Text:
    """One short stage note: the stages that failed or stalled, else the one running, else the
    last done — with how many of them are done (``✓ ready 3.6s (6/6)``)."""
    done = sum(1 for s in stages if s.status == "done")
    problems = [s for s in stages if s.status in ("failed", "stalled")]
    running = [s for s in stages if s.status == "running"]
    out = stage_line(problems or running[-1:] or stages[-1:])
    out.append(f" ({done}/{len(stages)})", style="dim")
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
        out.append(visible(f"{mark} {stage.stage} {stage.elapsed_s:.1f}s"), style=style)
        if stage.detail and stage.status in ("failed", "stalled"):
            out.append(visible(f" ({stage.detail})"), style=style)
    return out
