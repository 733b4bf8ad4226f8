"""Pane 2: containers, grouped by Docker endpoint, foreign-arch (emulated) ones marked; a
running container's recent CPU (sparkline) and memory from the stats sampler.

Its keys start, stop, restart, pause/unpause and remove (asks first) the selected container,
exec a shell in it, follow its logs, show its docker commands (x) and details (Enter).
"""

from __future__ import annotations

import shlex
from functools import partial

from rich.text import Text
from textual.binding import Binding
from textual.widgets import DataTable

from envdeck.backend import events as ev
from envdeck.backend.api import Backend, ContainerAction
from envdeck.backend.processes.model import ProcessRow
from envdeck.backend.stats.ring import History, container_subject
from envdeck.backend.text import visible

from ..formatting import plain, state_text
from ..messages import ShellRequested
from ..proctree import command_text
from ..screens.fields import LiveTab, Loader, fields_text
from ..widgets.sparkline import cpu_cell, memory_cell
from ..widgets.tablesync import cursor_key
from .table import TablePane

ENDPOINT_PREFIX = "endpoint:"
PENDING_STATE = {"stop": "stopping…", "restart": "restarting…"}
IMAGE_WIDTH = 24


def shorten(text: str, width: int) -> str:
    """``text`` cut to ``width`` cells with an ellipsis."""
    return text if len(text) <= width else text[: width - 1] + "…"


class ContainersPane(TablePane):
    """Endpoint header rows, then that endpoint's containers."""

    number = 2
    title = "Containers"
    pane_id = "containers"
    help_group = "Containers"
    MUTATING = frozenset(("start", "stop", "restart", "pause", "remove", "shell"))
    BINDINGS = [
        Binding("S", "start", "Start", id="container.start"),
        Binding("s", "stop", "Stop", id="container.stop"),
        Binding("r", "restart", "Restart", id="container.restart"),
        Binding("p", "pause", "Pause/unpause", id="container.pause"),
        Binding("d", "remove", "Remove", id="container.remove"),
        Binding("E", "shell", "Exec shell", id="container.shell"),
        Binding("l", "logs", "Logs", id="container.logs"),
        Binding("x", "command_menu", "Commands", id="container.commands"),
        Binding("enter", "details", "Details", show=False, id="container.details"),
        Binding("slash", "filter", "Filter", show=False, id="container.filter"),
    ]

    COLUMNS = ("NAME", "STATE", "PLATFORM", "IMAGE", "PORTS")
    PRIORITY = (0, 1, 2, 4, 3)
    # While some container has resource figures: its recent CPU and memory.
    GRAPH_COLUMNS = ("NAME", "STATE", "CPU", "MEM", "PLATFORM", "IMAGE", "PORTS")
    GRAPH_PRIORITY = (0, 1, 4, 2, 3, 6, 5)
    GRAPH_CELLS = (2, 3)
    graphs = False
    note_id = "containers-empty"

    def on_mount(self) -> None:
        """No action under way yet."""
        super().on_mount()
        self.pending: dict[tuple[str, str], str] = {}  # (endpoint, id) → 'stopping…'

    def columns(self) -> tuple[tuple[str, ...], tuple[int, ...]]:
        """With the graph columns while some container has figures."""
        if self.graphs:
            return self.GRAPH_COLUMNS, self.GRAPH_PRIORITY
        return self.COLUMNS, self.PRIORITY

    @property
    def selected(self) -> ev.ContainerInfo | None:
        """The container under the cursor (None on an endpoint row)."""
        key = cursor_key(self.main)
        if key is None or key.startswith(ENDPOINT_PREFIX):
            return None
        endpoint, _, cid = key.partition("|")
        return self.ctx.model.containers.get((endpoint, cid))

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        """Enter on a row (the table consumes the key itself): details."""
        event.stop()
        self.action_details()

    def render_model(self) -> None:
        """Rows from the model."""
        model = self.ctx.model
        colours = self.ctx.colours
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
                platform = plain(c.platform or "-")
                name_style = "bold" if c.state == "running" else ""
                if c.emulated:  # (the name too: PLATFORM is the first to go when narrow)
                    name_style = colours.get("emulated", "magenta") + " bold"
                    platform = plain(f"{c.platform or '?'} emulated", style=name_style)
                subject = container_subject(endpoint, c.id)
                running = c.state == "running"
                rows.append(
                    (
                        f"{endpoint}|{c.id}",
                        (
                            plain("  " + c.name, name_style),
                            state_text(self.pending.get((endpoint, c.id), c.state), colours),
                            cpu_cell(model.stats, subject) if running else "-",
                            memory_cell(model.stats, subject) if running else "-",
                            platform,
                            plain(shorten(visible(c.image), IMAGE_WIDTH)),
                            plain(", ".join(c.ports) or "-"),
                        ),
                    )
                )
        self.graphs = any(
            model.stats.values(container_subject(endpoint, cid), figure)
            for endpoint, cid in model.containers
            for figure in ("cpu_percent", "memory_bytes")
        )
        if not self.graphs:
            rows = [
                (k, tuple(c for i, c in enumerate(r) if i not in self.GRAPH_CELLS)) for k, r in rows
            ]
        self.show_rows(rows)
        emulated = sum(1 for c in model.containers.values() if c.emulated)
        counts = f"({count}{f', {emulated} emulated' if emulated else ''})" if count else ""
        self.set_title(" ".join(p for p in (counts, self.filter_extra()) if p))
        if not rows:
            if "containers" in self.ctx.missing_sources:
                self.show_note(
                    Text("Containers source not available in this build.", style="italic")
                )
            else:
                self.show_note(
                    Text(
                        "No Docker endpoints seen yet (waiting for the containers source).",
                        style="italic",
                    )
                )
        else:
            self.show_note(endpoint_problems(model.endpoints, colours))

    # --- actions ------------------------------------------------------------------------

    def _selected_or_warn(self) -> ev.ContainerInfo | None:
        c = self.selected
        if c is None:
            self.warn("No container selected.")
        return c

    def _docker_host(self, endpoint: str) -> str | None:
        status = self.ctx.model.endpoints.get(endpoint)
        return status.docker_host if status else None

    def _act(self, action: ContainerAction) -> None:
        """Run ``action``; a stop or restart (Docker waits up to its stop timeout) shows
        ``stopping…``/``restarting…`` in the row at once, until the result comes."""
        c = self._selected_or_warn()
        if c is None:
            return
        backend = self.ctx.backend
        key = (c.endpoint, c.id)

        async def act() -> str:
            try:
                return await backend.container_action(c.endpoint, c.id, action)
            finally:
                self.pending.pop(key, None)
                self.ctx.model.dirty.add(self.pane_id)

        if action in PENDING_STATE:
            self.pending[key] = PENDING_STATE[action]
            self.render_model()
        self.run_command(act())

    def action_start(self) -> None:
        """Start the selected container."""
        self._act("start")

    def action_stop(self) -> None:
        """Stop the selected container."""
        self._act("stop")

    def action_restart(self) -> None:
        """Restart the selected container."""
        self._act("restart")

    def action_pause(self) -> None:
        """Pause the selected container; unpause it when it is paused."""
        c = self.selected
        self._act("unpause" if c is not None and c.state == "paused" else "pause")

    def action_remove(self) -> None:
        """Remove the selected container (asks first, showing the docker command)."""
        from ..screens.modals import ConfirmScreen

        c = self._selected_or_warn()
        if c is None:
            return
        command = shlex.join(container_command(self._docker_host(c.endpoint), c.id[:12], "remove"))
        backend = self.ctx.backend

        def confirmed(yes: bool | None) -> None:
            if yes:
                self.run_command(backend.container_action(c.endpoint, c.id, "remove", force=True))

        self.show_screen(ConfirmScreen(f"Remove container {c.name}?", command, "Remove"), confirmed)

    def action_shell(self) -> None:
        """Suspend the dashboard, ``docker exec -it … sh``, come back."""
        if c := self._selected_or_warn():
            argv = partial(self.ctx.backend.container_shell_argv, c.endpoint, c.id)
            typed = ["envdeck", "container", "shell", c.name, "--endpoint", c.endpoint]
            self.post_message(ShellRequested(argv, shlex.join(typed)))

    def action_logs(self) -> None:
        """Follow the selected container's logs in a full-screen view."""
        from ..screens.logs import LogScreen

        if c := self._selected_or_warn():
            stream = partial(self.ctx.backend.container_logs, c.endpoint, c.id, tail=500)
            self.show_screen(LogScreen(f"logs of {c.name} on {c.endpoint}", stream))

    def action_command_menu(self) -> None:
        """``x``: the docker commands behind the selection; Enter runs one."""
        from ..screens.modals import PickScreen

        c = self._selected_or_warn()
        if c is None:
            return
        host = self._docker_host(c.endpoint)
        options = [
            (verb, f"{verb:<8} {shlex.join(container_command(host, c.id[:12], verb))}")
            for verb in (
                "start",
                "stop",
                "restart",
                "pause" if c.state != "paused" else "unpause",
                "remove",
            )
        ]
        options.append(("shell", f"{'shell':<8} docker exec -it {c.id[:12]} sh  (same as E)"))
        runs = {
            "start": self.action_start,
            "stop": self.action_stop,
            "restart": self.action_restart,
            "pause": self.action_pause,
            "unpause": self.action_pause,
            "remove": self.action_remove,
            "shell": self.action_shell,
        }

        def picked(verb: str | None) -> None:
            if verb is not None:
                runs[verb]()

        self.show_screen(
            PickScreen(f"{c.name} on {c.endpoint}", options, "Enter runs · Esc closes"), picked
        )

    def action_details(self) -> None:
        """Enter: the container's fields, its stats now, its processes, in tabs (on an
        endpoint's row: the endpoint, its whole reason when unreachable)."""
        from ..screens.details import DetailScreen
        from ..widgets.charts import Charts

        c = self.selected
        if c is None:
            key = cursor_key(self.main) or ""
            status = self.ctx.model.endpoints.get(key.removeprefix(ENDPOINT_PREFIX))
            if key.startswith(ENDPOINT_PREFIX) and status is not None:
                endpoint = [("Endpoint", partial(fields_text, status, now=self.ctx.clock()))]
                self.show_screen(DetailScreen(f"endpoint {status.endpoint}", endpoint))
            return
        top = [
            r
            for r in self.ctx.model.processes.get("host", {}).values()
            if r.get("container") == c.name
        ]
        tabs: list[tuple[str, Loader | LiveTab]] = [
            ("Details", partial(fields_text, c, now=self.ctx.clock())),
            ("Stats", partial(stats_text, self.ctx.backend, c)),
            ("Top", partial(top_text, top)),
            (
                "Graphs",
                LiveTab(partial(Charts, self._history, container_subject(c.endpoint, c.id))),
            ),
        ]
        self.show_screen(DetailScreen(f"container {c.name} on {c.endpoint}", tabs))

    def _history(self) -> History:
        """The model's sample history (the graphs read it each second)."""
        return self.ctx.model.stats


def container_command(docker_host: str | None, ref: str, action: str) -> list[str]:
    """The docker CLI call equivalent to ``action`` (shown by the ``x`` menu)."""
    base = ["docker"] + (["-H", docker_host] if docker_host else [])
    verb = {"remove": ["rm", "-f"]}.get(action, [action])
    return [*base, *verb, ref]


def stats_text(backend: Backend, c: ev.ContainerInfo) -> Text:
    """CPU and memory sampled now (blocking: a detail tab loads it in a thread)."""
    return fields_text(backend.container_stats(c.endpoint, c.id))


def top_text(rows: list[ProcessRow]) -> Text:
    """The container's processes from the host snapshot."""
    if not rows:
        return Text("no processes of this container in the host's process table", style="italic")
    lines = [
        f"{r['pid']:>7} {(r.get('cpu_percent') or 0.0):5.1f}%  {visible(command_text(r))}"
        for r in rows
    ]
    return Text("\n".join(lines))


def endpoint_cells(status: ev.EndpointStatus | None, name: str, colours: dict[str, str]) -> tuple:
    """The header row of one endpoint: name, reachability, native arch (reasons go below)."""
    title = plain(name, "bold underline")
    if status is None:
        return (title, "", "", "", "", "", "")
    if status.reachable:
        native = plain(f"native {status.native_arch}" if status.native_arch else "")
        reachable = Text("reachable", style=colours.get("state-ready", ""))
        return (title, reachable, "", "", native, "", "")
    return (title, Text("unreachable", style=colours.get("state-crashed", "")), "", "", "", "", "")


def endpoint_problems(endpoints: dict[str, ev.EndpointStatus], colours: dict[str, str]) -> Text:
    """One line: the first unreachable endpoint's reason (its first line) and how many more are
    unreachable; Enter on an endpoint's row shows its whole reason."""
    down = [endpoints[name] for name in sorted(endpoints) if not endpoints[name].reachable]
    out = Text()
    if not down:
        return out
    first = down[0]
    out.append(visible(f"{first.endpoint}: "), style="bold")
    reason = (first.reason or "unreachable").strip().splitlines() or ["unreachable"]
    out.append(visible(reason[0]), style=colours.get("state-crashed", ""))
    more = len(down) - 1
    out.append(f"  (+{more} more) " if more else "  ", style="bold")
    out.append("(Enter on it: details)", style="dim")
    return out
