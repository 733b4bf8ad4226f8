"""The dashboard's commands: what each action key does (backend calls go through actions.py).

A mixin of :class:`~envdeck.tui.app.EnvdeckApp`; every backend call runs in a worker, and every
change to the world asks first where it cannot be undone (delete, remove, signals).
"""

from __future__ import annotations

import json
import shlex
import subprocess
import webbrowser
from collections.abc import Callable
from dataclasses import asdict, is_dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

from rich.text import Text
from textual import work
from textual.worker import Worker

from envdeck.backend import store

from . import actions
from .panes.containers import ContainersPane
from .panes.forwards import ForwardsPane
from .panes.instances import STAGE_MARK, InstancesPane
from .panes.processes import ProcessesPane
from .panes.serial_search import search_log
from .proctree import command_text
from .screens.details import DetailScreen
from .screens.logs import LogScreen
from .screens.modals import ConfirmScreen, PickScreen, PromptScreen, TextScreen, signal_options
from .widgets.procview import ProcessView

if TYPE_CHECKING:
    from .model import DashboardModel

TINY_NAME = "tiny"


class CommandsMixin:
    """Action handlers of the dashboard (``self`` is the EnvdeckApp)."""

    model: DashboardModel
    selected_instance: str | None

    def _selected_container(self):  # noqa: ANN202 - ContainerInfo | None
        return self.query_one(ContainersPane).selected

    def action_instance(self, verb: str) -> None:
        """start/stop/restart/pause/delete the selected instance (delete asks first; pause toggles)."""
        name = self.query_one(InstancesPane).selected
        if name is None:
            self.notify("No instance selected.", severity="warning")
            return
        status = self.model.instances.get(name)
        if verb == "pause" and status is not None and status.state == "paused":
            verb = "resume"
        if verb == "delete":
            self.push_screen(
                ConfirmScreen(
                    f"Delete instance {name}?",
                    "Its disk and state are removed; this cannot be undone.",
                    "Delete",
                ),
                lambda yes: yes and self.run_action_worker(actions.instance_action(name, "delete")),
            )
            return
        self.run_action_worker(actions.instance_action(name, verb))

    def action_container(self, verb: str) -> None:
        """start/stop/restart/pause/remove the selected container (remove asks first)."""
        c = self._selected_container()
        if c is None:
            self.notify("No container selected.", severity="warning")
            return
        if verb == "pause" and c.state == "paused":
            verb = "unpause"
        if verb == "remove":
            command = shlex.join(
                actions.container_command(self._docker_host(c.endpoint), c.id[:12], "remove")
            )
            self.push_screen(
                ConfirmScreen(f"Remove container {c.name}?", command, "Remove"),
                lambda yes: (
                    yes
                    and self.run_action_worker(
                        actions.container_action(c.endpoint, c.id, "remove", force=True)
                    )
                ),
            )
            return
        self.run_action_worker(actions.container_action(c.endpoint, c.id, verb))

    def action_container_logs(self) -> None:
        """Follow the selected container's logs in a full-screen view."""
        c = self._selected_container()
        if c is None:
            self.notify("No container selected.", severity="warning")
            return
        self.push_screen(
            LogScreen(
                f"logs of {c.name} on {c.endpoint}",
                partial(actions.container_logs, c.endpoint, c.id),
            )
        )

    def _docker_host(self, endpoint: str) -> str | None:
        status = self.model.endpoints.get(endpoint)
        return status.docker_host if status else None

    def action_create_tiny(self) -> None:
        """Create the built-in tiny instance."""
        if TINY_NAME in self.model.instances:
            self.notify(f"{TINY_NAME} exists already; S starts it.")
            return
        self.notify(f"Creating {TINY_NAME}… (the first build of its image takes a while)")
        self.run_action_worker(actions.create_instance(TINY_NAME, "tiny"))

    def action_signal(self) -> None:
        """Pick a signal (TERM first), confirm, send."""
        row = self.query_one(ProcessView).selected
        if row is None:
            self.notify("No process selected.", severity="warning")
            return
        if self.query_one(ProcessesPane).host != "host":
            self.notify("Signals go to host processes only.", severity="warning")
            return
        pid, start, what = row["pid"], row.get("start_time"), command_text(row)[:60]

        def picked(number: str | None) -> None:
            if number is None:
                return
            label = dict(signal_options())[number]
            self.push_screen(
                ConfirmScreen(f"Send {label} to {pid}?", what, "Send"),
                lambda yes: (
                    yes and self.run_action_worker(actions.send_signal(pid, start, int(number)))
                ),
            )

        self.push_screen(
            PickScreen(f"Signal for {pid} {what}", signal_options(), "Enter picks · Esc cancels"),
            picked,
        )

    def action_shell(self) -> None:
        """Suspend the dashboard, run the guest SSH / container exec shell, come back."""
        pane = self.focused_pane()
        if isinstance(pane, ContainersPane):
            c = self._selected_container()
            if c is None:
                self.notify("No container selected.", severity="warning")
                return
            self._shell(partial(actions.container_shell_argv, c.endpoint, c.id))
            return
        name = self.query_one(InstancesPane).selected
        if name is None:
            self.notify("No instance selected.", severity="warning")
            return
        self._shell(partial(actions.instance_shell_argv, name))

    @work(thread=True, group="lookups", exit_on_error=False)
    def _shell(self, lookup: Callable[[], list[str]]) -> None:
        """Find the argv off the UI (it may ask dockerd), then run it on the real terminal."""
        argv = lookup()
        self.call_from_thread(self.run_interactive, argv)

    def run_interactive(self, argv: list[str]) -> None:
        """Run ``argv`` on the real terminal (the app is suspended meanwhile)."""
        try:
            self._suspended = True
            with self.suspend():
                completed = subprocess.run(argv, check=False)
        except Exception as exc:  # noqa: BLE001 - SuspendNotSupported, missing program
            self.notify(
                f"{exc.__class__.__name__}: {exc}\n{shlex.join(argv)}",
                title="shell",
                severity="error",
            )
            return
        finally:
            self._suspended = False
        self.action_refresh_now()
        if completed.returncode not in (0, 130):
            self.notify(f"shell exited with {completed.returncode}", severity="warning")

    def action_command_menu(self) -> None:
        """``x``: the literal commands behind the selection."""
        pane = self.focused_pane()
        if isinstance(pane, ContainersPane):
            self._container_menu()
        elif isinstance(pane, ProcessesPane):
            row = pane.main.selected
            if row is not None:
                self.push_screen(
                    TextScreen(f"Process {row['pid']}", _process_text(row), id="command")
                )
        else:
            name = self.query_one(InstancesPane).selected
            if name is None:
                self.notify("No instance selected.", severity="warning")
                return
            self._instance_commands(name)

    @work(thread=True, group="lookups", exit_on_error=False)
    def _instance_commands(self, name: str) -> None:
        body = Text(_instance_commands_text(name))
        self.call_from_thread(
            self.push_screen, TextScreen(f"Commands of {name}", body, id="command")
        )

    def _container_menu(self) -> None:
        c = self._selected_container()
        if c is None:
            self.notify("No container selected.", severity="warning")
            return
        host = self._docker_host(c.endpoint)
        options = [
            (verb, f"{verb:<8} {shlex.join(actions.container_command(host, c.id[:12], verb))}")
            for verb in (
                "start",
                "stop",
                "restart",
                "pause" if c.state != "paused" else "unpause",
                "remove",
            )
        ]
        options.append(("shell", f"{'shell':<8} docker exec -it {c.id[:12]} sh  (same as E)"))

        def picked(verb: str | None) -> None:
            if verb == "shell":
                self.action_shell()
            elif verb is not None:
                self.action_container("remove" if verb == "remove" else verb)

        self.push_screen(
            PickScreen(f"{c.name} on {c.endpoint}", options, "Enter runs · Esc closes"), picked
        )

    def action_details(self) -> None:
        """Enter: everything known about the selection, in tabs ([ and ] switch)."""
        pane = self.focused_pane()
        tabs: list[tuple[str, Callable[[], str | Text]]] = []
        title = "Details"
        if isinstance(pane, InstancesPane) and pane.selected in self.model.instances:
            name = pane.selected
            status = self.model.instances[name]
            title = f"instance {name}"
            tabs = [
                ("Status", partial(_json, status)),
                ("Boot stages", partial(_stages_text, self.model.ordered_stages(name))),
                ("Config", partial(actions.instance_config_text, name)),
                ("Commands", partial(_instance_commands_text, name)),
            ]
        elif isinstance(pane, ContainersPane) and pane.selected is not None:
            c = pane.selected
            title = f"container {c.name} on {c.endpoint}"
            top = [
                r
                for r in self.model.processes.get("host", {}).values()
                if r.get("container") == c.name
            ]
            tabs = [
                ("Details", partial(_json, c)),
                (
                    "Stats",
                    partial(lambda e, i: _json(actions.container_stats(e, i)), c.endpoint, c.id),
                ),
                ("Top", partial(_top_text, top)),
            ]
        elif isinstance(pane, ForwardsPane) and pane.selected is not None:
            title, tabs = (
                f"forward {pane.selected.guest}",
                [("Details", partial(_json, pane.selected))],
            )
        elif isinstance(pane, ProcessesPane) and pane.main.selected is not None:
            row = pane.main.selected
            title = f"process {row['pid']}"
            tabs = [("Command", partial(_process_text, row)), ("Details", partial(_json, row))]
        if tabs:
            self.push_screen(DetailScreen(title, tabs))

    def action_new_forward(self) -> None:
        """Ask for GUEST[:HOST] and add that forward to the selected instance."""
        name = self.selected_instance
        if name is None:
            self.notify("No instance selected.", severity="warning")
            return

        def add(spec: str | None) -> None:
            if spec:
                self.run_action_worker(actions.forward_add(name, spec))

        self.push_screen(
            PromptScreen(
                f"New forward for {name}", "GUEST[:HOST] or GUEST:HOSTIP:HOST, e.g. 8080 or 80:8080"
            ),
            add,
        )

    def action_remove_forward(self) -> None:
        """Remove the selected forward (asks first)."""
        forward = self.query_one(ForwardsPane).selected
        if forward is None:
            self.notify("No forward selected.", severity="warning")
            return
        self.push_screen(
            ConfirmScreen(
                f"Remove the forward of guest {forward.guest}?",
                f"{forward.guest} → {forward.host} on {forward.instance}",
                "Remove",
            ),
            lambda yes: (
                yes
                and self.run_action_worker(actions.forward_remove(forward.instance, forward.guest))
            ),
        )

    def action_open_forward(self) -> None:
        """Open the selected forward's host address in a browser."""
        forward = self.query_one(ForwardsPane).selected
        if forward is None or forward.host.startswith("/"):
            self.notify("Select a TCP forward first.", severity="warning")
            return
        url = f"http://{forward.host}/"
        self.notify(f"Opening {url}")
        self._open_url(url)

    @work(thread=True, group="lookups", exit_on_error=False)
    def _open_url(self, url: str) -> None:
        webbrowser.open(url)

    def run_action_worker(self, coro) -> Worker:  # noqa: ANN001 - a coroutine
        """Run a backend command off the UI; the result or error becomes a notification."""
        return self.run_worker(coro, group="actions", exit_on_error=False)

    def save_text(self, path: Path, text: str) -> None:
        """Write a file from a thread and say where it went."""
        self._save(path, text)

    @work(thread=True, group="lookups", exit_on_error=False)
    def _save(self, path: Path, text: str) -> None:
        path.write_text(text)
        self.notify(f"saved {path}")

    @work(thread=True, group="lookups", exit_on_error=False, exclusive=True)
    def search_serial(self, name: str, pattern: str) -> None:
        """Search the instance's whole serial log on disk (not only the window)."""
        hits, total = search_log(store.InstanceDir.of(name).serial_log, pattern)
        body = Text(
            "\n".join(hits) if hits else "no matches (the log on disk is empty or has none)"
        )
        title = f"/{pattern} in {name}'s serial log: {total} lines" + (
            f" (first {len(hits)})" if total > len(hits) else ""
        )
        self.call_from_thread(self.push_screen, TextScreen(title, body, id="search"))


def _process_text(row: dict) -> Text:
    out = Text()
    out.append("cmdline: ", style="bold")
    out.append(shlex.join(row.get("cmdline") or []) + "\n")
    emulated = row.get("emulated")
    if emulated:
        out.append("emulated: ", style="bold")
        out.append(f"{emulated.get('arch')} via {emulated.get('interpreter')}\n")
        out.append("as run:   ", style="bold")
        out.append(command_text(row) + "\n")
    for key in ("user", "container", "state", "start_time"):
        if row.get(key) is not None:
            out.append(f"{key}: ", style="bold")
            out.append(f"{row[key]}\n")
    return out


def _json(item: object) -> Text:
    data = asdict(item) if is_dataclass(item) and not isinstance(item, type) else item
    return Text(json.dumps(data, indent=2, default=str))


def _instance_commands_text(name: str) -> str:
    """The instance's literal QEMU and shell command lines (each may be unavailable)."""
    parts = []
    for title, func in (
        ("QEMU", actions.instance_qemu_argv),
        ("Shell", actions.instance_shell_argv),
    ):
        try:
            parts.append(f"{title}:\n  {shlex.join(func(name))}")
        except Exception as exc:  # noqa: BLE001 - shown to the user
            parts.append(f"{title}: not available — {exc}")
    return "\n\n".join(parts)


def _top_text(rows: list[dict]) -> Text:
    """The container's processes from the host snapshot."""
    if not rows:
        return Text("no processes of this container in the host's process table", style="italic")
    lines = [
        f"{r['pid']:>7} {(r.get('cpu_percent') or 0.0):5.1f}%  {command_text(r)}" for r in rows
    ]
    return Text("\n".join(lines))


def _stages_text(stages: list) -> Text:
    """One boot stage per line: mark, name, seconds since start, detail."""
    if not stages:
        return Text("no boot stages seen since the dashboard started", style="italic")
    return Text(
        "\n".join(
            f"{STAGE_MARK.get(s.status, '?')} {s.stage:<22} {s.elapsed_s:6.1f}s  {s.status}"
            + (f"  {s.detail}" if s.detail else "")
            for s in stages
        )
    )
