"""The envdeck dashboard: one screen over instances, containers, forwards, processes, serial.

A client of the backend: it subscribes to a :class:`~envdeck.backend.sources.Hub` of sources
(live ones from :mod:`envdeck.backend.live`, or a replay) and renders the model they fill at 15 Hz
at most. Each pane owns its keys; it asks for screens, backend commands (a typed
:class:`~envdeck.backend.api.Backend`, run here in workers) and shells with the messages of
:mod:`envdeck.tui.messages`. Errors become notifications.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import shlex
import subprocess
import time
from collections.abc import Callable, Iterable

from rich.style import Style
from textual import on, work
from textual.app import App, ComposeResult, SystemCommand
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.dom import DOMNode
from textual.screen import ModalScreen, Screen
from textual.timer import Timer
from textual.worker import Worker, WorkerState

from envdeck.backend import store
from envdeck.backend.api import Backend, LiveBackend, ReplayBackend
from envdeck.backend.live import LiveStart
from envdeck.backend.recording import ReplaySource
from envdeck.backend.sources import Hub, Source
from envdeck.backend.text import visible
from envdeck.themes import (
    BUILTIN_THEMES,
    DEFAULT_THEME,
    bundled_themes,
    load_user_themes,
    pane_border,
    variable_defaults,
)

from .context import DashContext
from .hostinfo import host_summary
from .keys import all_ids, bindings_of, help_text
from .messages import ActionRequested, InstanceSelected, ScreenRequested, ShellRequested
from .model import DashboardModel
from .panes.base import Pane
from .panes.containers import ContainersPane
from .panes.forwards import ForwardsPane
from .panes.instances import InstancesPane
from .panes.processes import ProcessesPane
from .panes.serial import SerialLog, SerialPane
from .panes.table import ListTable
from .settings import UISettings, load_settings
from .widgets.footer import KeyFooter
from .widgets.header import HostHeader
from .widgets.procview import ProcessView

REFRESH_HZ = 15
FIRST_ROWS_WAIT = 2.0  # s the slower live sources wait for the process rows to be on screen
FIRST_FRAME_WAIT = 0.1  # s the first frame waits for process rows whose scan is taken already
PANE_COMMANDS = {"vm": 1, "ct": 2, "pf": 3, "ps": 4, "log": 5, "serial": 5}


class EnvdeckApp(App[int]):
    """The dashboard. ``sources`` default to the live ones (``live``, when started already),
    ``backend`` to the real one.

    Given a replay and no backend, the dashboard is read-only and its backend refuses every
    command (:class:`ReplayBackend`): a recording never touches what lives on this machine.
    """

    CSS_PATH = "app.tcss"
    TITLE = "envdeck"
    BINDINGS = [
        Binding("question_mark", "help", "Help", id="app.help"),
        Binding("q", "quit_or_back", "Quit", id="app.quit"),
        Binding("1", "focus_pane(1)", "Instances", show=False, id="app.pane1"),
        Binding("2", "focus_pane(2)", "Containers", show=False, id="app.pane2"),
        Binding("3", "focus_pane(3)", "Forwards", show=False, id="app.pane3"),
        Binding("4", "focus_pane(4)", "Processes", show=False, id="app.pane4"),
        Binding("5", "focus_pane(5)", "Serial", show=False, id="app.pane5"),
        Binding("tab", "cycle_pane(1)", "Next pane", show=False, priority=True, id="app.next_pane"),
        Binding(
            "shift+tab",
            "cycle_pane(-1)",
            "Previous pane",
            show=False,
            priority=True,
            id="app.prev_pane",
        ),
        Binding("colon", "command_mode", "Command", show=False, id="app.command"),
        Binding("ctrl+r", "refresh_now", "Refresh", show=False, id="app.refresh"),
        Binding(
            "ctrl+p",
            "command_palette",
            "Palette",
            show=False,
            id="app.palette",
        ),
    ]

    def __init__(
        self,
        sources: list[Source] | None = None,
        *,
        theme: str | None = None,
        readonly: bool = False,
        settings: UISettings | None = None,
        clock: Callable[[], float] | None = None,
        host_info: Callable[[], str] | None = None,
        backend: Backend | None = None,
        live: LiveStart | None = None,
    ) -> None:
        super().__init__()
        self.settings = settings if settings is not None else load_settings()
        self.notices: list[str] = list(self.settings.notices)
        # The live sources are made off the UI thread from now on (see _start_live).
        self._live = (live or LiveStart()) if sources is None else None
        sources = [] if sources is None else sources
        self.sources = sources
        self.hub = Hub(sources)
        replay = self.hub.replay()
        self.recordings = [s for s in sources if isinstance(s, ReplaySource)]
        if backend is None:
            backend = LiveBackend() if replay is None else ReplayBackend()
        readonly = readonly or isinstance(backend, ReplayBackend)
        self.ctx = DashContext(
            model=DashboardModel(),
            backend=backend,
            settings=self.settings,
            clock=clock or (replay.now if replay else time.time),
            readonly=readonly,
            missing_sources=set(),
            mode_tags=[
                t for t, on_ in (("REPLAY", replay is not None), ("READ-ONLY", readonly)) if on_
            ],
        )
        # A replay shows the recording, not this host's load and memory.
        self.host_info = host_info or (host_summary if replay is None else self._replay_line)
        self._replay_ended = False
        self._requested_theme = theme
        self._reported_errors = 0
        self._reported_model_errors = 0
        self._reported_skipped = 0
        self._suspended = False
        self._rendered_at: dict[str, float] = {}  # pane id -> when it last rendered
        self._flush_timer: Timer | None = None
        self._panes_mounted = False  # (events may come before: they wait in the model)
        self._first_frame = asyncio.Event()
        self._rows_applied = asyncio.Event()  # the first process rows (or why none) are in
        self._rows_shown = asyncio.Event()  # ... and on screen
        # Themes before the first stylesheet parse: a theme set in on_mount parses it all again.
        self._register_themes()
        self._apply_theme(self._requested_theme or self.settings.theme)

    @property
    def model(self) -> DashboardModel:
        """What the panes render."""
        return self.ctx.model

    @property
    def missing_sources(self) -> set[str]:
        """What the live sources that could not start would feed (panes say so)."""
        return self.ctx.missing_sources

    @property
    def selected_instance(self) -> str | None:
        """The instance that drives the forwards and serial panes."""
        return self.ctx.selected_instance

    # --- setup ------------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        """Header, two columns of panes, footer."""
        ctx = self.ctx
        yield HostHeader(ctx, id="header")
        with Horizontal(id="body"):
            with Vertical(id="left"):
                yield InstancesPane(ctx, id="instances")
                yield ContainersPane(ctx, id="containers")
                yield ForwardsPane(ctx, id="forwards")
            with Vertical(id="right"):
                yield ProcessesPane(ctx, id="processes")
                yield SerialPane(ctx, id="serial")
        yield KeyFooter(compact=True)

    async def on_load(self) -> None:
        """The hub, and the process tree's first rows when their scan is taken already: in the
        model before Textual builds the screen, so its first layout and paint have them (a wait
        in ``on_mount`` let Textual lay out and render a frame it then threw away)."""
        self.run_worker(self._consume(), name="hub", group="hub", exit_on_error=False)
        if self._live is None:
            return
        self.run_worker(self._start_live(self._live), name="live", group="hub", exit_on_error=False)
        if self._live.first_ready:  # (a few event-loop turns)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._rows_applied.wait(), FIRST_FRAME_WAIT)

    async def on_mount(self) -> None:
        """Keymap, the refresh timers, the panes (with the first process rows, when
        :meth:`on_load` had them); Textual paints the first frame once this returns."""
        self._panes_mounted = True
        self.theme_changed_signal.subscribe(self, lambda _theme: self._theme_changed())
        self._theme_changed()
        if self.settings.keymap:
            unknown = sorted(set(self.settings.keymap) - set(all_ids(self.help_groups())))
            if unknown:
                self.notices.append(
                    f"keymap: unknown binding ids {', '.join(unknown)} (see ? for the ids)"
                )
            self.set_keymap(self.settings.keymap)
        self.ctx.host_line = self.host_info()
        self._flush_timer = self.set_interval(1 / REFRESH_HZ, self.flush)
        self.model.dirty.on_mark = self._flush_timer.resume  # (flush pauses it when idle)
        self.set_interval(1.0, self._every_second)
        self.set_interval(3.0, self._refresh_host)
        self.call_after_refresh(self._first_frame.set)
        self.panes[0].focus_pane()
        self.flush()
        for notice in self.notices:
            self.notify(notice, title="envdeck", severity="warning", timeout=8)

    async def _start_live(self, live: LiveStart) -> None:
        """Start the process tree as soon as its first scan is taken (its rows may make the
        first frame); once they are on screen, make the other live sources (off the UI thread)
        and start each on the hub as it comes; say which could not start and what the user
        misses."""
        try:
            if await live.start_first(self.hub):
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._rows_shown.wait(), FIRST_ROWS_WAIT)
            await self._first_frame.wait()
            found = await live.start_rest(self.hub)
        finally:
            settle_garbage_collector()
        self.ctx.missing_sources.update(found.missing)
        for notice in found.notices:
            self.notices.append(notice)
            self.notify(notice, title="envdeck", severity="warning", timeout=8)
        if found.missing:
            self.model.dirty.update(("instances", "containers", "processes"))

    async def _consume(self) -> None:
        """Fold every hub event into the model (cheap); panes render on the next tick."""
        stream = self.hub.subscribe()
        first = asyncio.ensure_future(anext(stream))
        await asyncio.sleep(0)  # the subscription exists before any source emits
        await self.hub.start()
        try:
            event = await first
            while True:
                self.model.apply(event)
                if not self._rows_applied.is_set() and self._has_process_rows():
                    self.flush()  # the first rows at once, not on the next tick
                    self._rows_applied.set()
                    self.call_after_refresh(self._rows_shown.set)
                event = await anext(stream)
        finally:
            await self.hub.stop()

    def _has_process_rows(self) -> bool:
        return bool(self.model.processes or self.model.processes_unavailable)

    async def on_unmount(self) -> None:
        """Stop the sources."""
        await self.hub.stop()

    def _register_themes(self) -> None:
        for theme in BUILTIN_THEMES.values():
            self.register_theme(theme)
        bundled = bundled_themes()  # TOML themes we ship
        user, errors = load_user_themes(store.config_dir() / "themes")
        for theme in [*bundled, *user]:
            self.register_theme(theme)
        self.notices.extend(errors)

    def _apply_theme(self, name: str | None) -> None:
        if name and name in self.available_themes:
            self.theme = name
            return
        if name:
            self.notices.append(
                f"unknown theme {name!r}; themes: {', '.join(sorted(self.available_themes))}"
            )
        self.theme = DEFAULT_THEME

    def get_theme_variable_defaults(self) -> dict[str, str]:
        """Our custom variables for themes that do not define them (Textual's built-ins)."""
        theme = self.get_theme(self.theme) if self.theme else None
        return {
            **super().get_theme_variable_defaults(),
            **variable_defaults(theme.dark if theme else True),
        }

    def get_css_variables(self) -> dict[str, str]:
        """Textual's and the theme's, plus ``$pane-border`` (see :func:`pane_border`)."""
        variables = super().get_css_variables()
        variables["pane-border"] = pane_border(variables, self.current_theme.dark)
        return variables

    def refresh_css(self, animate: bool = True) -> None:
        """Textual's, except before the first screen: the theme set in ``__init__`` queues a
        refresh that would parse the whole stylesheet once more, when the parse at the first
        screen is still to come (and reads these variables)."""
        if self.screen_stack:
            super().refresh_css(animate)
        else:
            self.stylesheet.set_variables(self.get_css_variables())

    def _theme_changed(self) -> None:
        colours = {}
        for key, value in self.get_css_variables().items():  # (the current theme's, computed now)
            with contextlib.suppress(Exception):
                Style.parse(value)
                colours[key] = value
        self.ctx.colours = colours
        self.model.dirty.update(("instances", "containers", "forwards", "processes", "header"))

    # --- rendering --------------------------------------------------------------------------

    @property
    def panes(self) -> list[Pane]:
        """The five panes in number order."""
        return sorted(self.query(Pane), key=lambda p: p.number)

    @property
    def shutting_down(self) -> bool:
        """True from the moment Textual starts tearing the app down (``_running`` clears first)."""
        return not self.is_running or not self.screen_stack

    def flush(self) -> None:
        """Render dirty panes (batched); nothing while a modal is up or the app is suspended."""
        # Timers still fire while the app shuts down (widgets going, then the screen stack).
        if self._suspended or self.shutting_down or not self._panes_mounted:
            return
        self._report_replay_end()  # (cheap; here so the end shows with the last events)
        if isinstance(self.screen, ModalScreen):
            return
        dirty = set(self.model.dirty)
        if not dirty:
            if self._flush_timer is not None:  # no tick until a pane is marked again
                self._flush_timer.pause()
            return
        self.model.dirty.clear()
        with self.batch_update():
            now = time.monotonic()
            for pane in self.panes:
                if pane.pane_id in dirty:
                    pane.render_model()
                    self._rendered_at[pane.pane_id] = now
            if "header" in dirty:
                self.query_one(HostHeader).render_model()

    def _every_second(self) -> None:
        if self.shutting_down:
            return
        self._report_replay_end()  # (the refresh timer sleeps while nothing is dirty)
        recently = time.monotonic() - self._rendered_at.get("instances", 0.0) < 0.9
        if self.model.instances and not recently:  # (figures each second render it anyway)
            self.model.dirty.add("instances")  # uptimes
        errors = self.hub.errors
        for name, exc in errors[self._reported_errors :]:
            self.notify(
                visible(f"{name}: {exc}"),
                title="source failed",
                severity="error",
                timeout=10,
                markup=False,
            )
        self._reported_errors = len(errors)
        for error in self.model.errors[self._reported_model_errors :]:
            self.notify(
                visible(error), title="dashboard", severity="error", timeout=10, markup=False
            )
        self._reported_model_errors = len(self.model.errors)
        self._report_skipped_lines()

    def _replay_line(self) -> str:
        names = ", ".join(r.path.name for r in self.recordings)
        return f"recording {names}" if names else "recording"

    def _report_replay_end(self) -> None:
        """Mark the end of a replay in the header (once every recording has played)."""
        if self._replay_ended or not self.recordings:
            return
        if not all(r.finished for r in self.recordings):
            return
        self._replay_ended = True
        self.ctx.mode_tags = ["REPLAYED" if t == "REPLAY" else t for t in self.ctx.mode_tags]
        self.model.dirty.add("header")

    def _report_skipped_lines(self) -> None:
        """A recording with bad lines: the count in the header, a notification when it grows."""
        skipped = sum(r.skipped for r in self.recordings)
        if skipped == self._reported_skipped:
            return
        self._reported_skipped = skipped
        tags = [t for t in self.ctx.mode_tags if not t.endswith("SKIPPED")]
        self.ctx.mode_tags = [*tags, f"{skipped} BAD LINES SKIPPED"]
        self.model.dirty.add("header")
        for recording in self.recordings:
            if recording.skipped:
                self.notify(
                    visible(recording.reader.summary()),
                    title="recording",
                    severity="warning",
                    timeout=8,
                    markup=False,
                )

    def _refresh_host(self) -> None:
        self.ctx.host_line = self.host_info()
        self.model.dirty.add("header")

    def select_instance(self, name: str | None) -> None:
        """The instance that drives the forwards and serial panes."""
        if name != self.ctx.selected_instance:
            self.ctx.selected_instance = name
            self.model.dirty.update(("forwards", "serial", "instances"))

    # --- navigation ---------------------------------------------------------------------------

    def focused_pane(self) -> Pane | None:
        """The pane that holds the focus."""
        node: DOMNode | None = self.focused
        while node is not None and not isinstance(node, Pane):
            node = node.parent
        return node

    async def action_quit_or_back(self) -> None:
        """q: close the modal on top, else quit."""
        if isinstance(self.screen, ModalScreen):
            self.screen.dismiss(None)
        else:
            self.exit(0)

    def action_focus_pane(self, number: int) -> None:
        """Focus pane ``number`` (1-5)."""
        if isinstance(self.screen, ModalScreen):
            return
        for pane in self.panes:
            if pane.number == number:
                if self.screen.maximized is not None and self.screen.maximized is not pane:
                    self.screen.minimize()
                pane.focus_pane()

    def action_cycle_pane(self, step: int) -> None:
        """Next/previous pane."""
        if isinstance(self.screen, ModalScreen):
            self.screen.focus_next() if step > 0 else self.screen.focus_previous()
            return
        current = self.focused_pane()
        number = current.number if current else 0
        self.action_focus_pane((number - 1 + step) % 5 + 1)

    def action_help(self) -> None:
        """Every key, grouped by pane (the focused pane's first), with its binding id."""
        from .screens.modals import TextScreen

        pane = self.focused_pane()
        groups = self.help_groups()
        if pane is not None:
            groups.sort(key=lambda g: g[0] != pane.help_group)
        title = (
            "Keys"
            + (f" — {pane.title} first" if pane else "")
            + " · remap by id: config.yaml keymap"
        )
        self.push_screen(TextScreen(title, help_text(groups, self.settings.keymap), id="help"))

    def help_groups(self) -> list[tuple[str, list[Binding]]]:
        """(group, bindings) for the help screen and the palette."""
        from .screens.details import DetailScreen
        from .screens.logs import LogScreen
        from .screens.modals import ConfirmScreen

        return [
            ("Everywhere", bindings_of(self.BINDINGS)),
            ("Instances", bindings_of(InstancesPane.BINDINGS)),
            ("Containers", bindings_of(ContainersPane.BINDINGS)),
            ("Container logs", bindings_of(LogScreen.BINDINGS)),
            ("Details (Enter)", bindings_of(DetailScreen.BINDINGS)),
            ("Confirm dialogs", bindings_of(ConfirmScreen.BINDINGS)),
            ("Forwards", bindings_of(ForwardsPane.BINDINGS)),
            ("Lists (instances, containers, forwards)", bindings_of(ListTable.BINDINGS)),
            ("Processes", bindings_of(ProcessesPane.BINDINGS) + bindings_of(ProcessView.BINDINGS)),
            ("Serial log", bindings_of(SerialPane.BINDINGS) + bindings_of(SerialLog.BINDINGS)),
        ]

    def action_command_mode(self) -> None:
        """``:vm`` ``:ct`` ``:pf`` ``:ps`` ``:log`` ``:create NAME`` ``:theme NAME`` ``:q``."""
        from .screens.modals import PromptScreen

        self.push_screen(
            PromptScreen(":", "vm | ct | pf | ps | log | create NAME | theme NAME | q"),
            self._run_command,
        )

    def _run_command(self, text: str | None) -> None:
        if not text:
            return
        word, _, rest = text.lstrip(":").partition(" ")
        if word in PANE_COMMANDS:
            self.action_focus_pane(PANE_COMMANDS[word])
        elif word == "create":
            self.action_focus_pane(1)
            self.query_one(InstancesPane).action_create(rest.strip())
        elif word == "theme" and rest:
            name = rest.strip()
            if name in self.available_themes:
                self.theme = name
                self.notify(f"theme: {visible(name)}", timeout=3, markup=False)
            else:
                themes = ", ".join(sorted(self.available_themes))
                self.notify(
                    visible(f"unknown theme {name!r}; themes: {themes}"),
                    severity="warning",
                    markup=False,
                )
        elif word in ("q", "quit"):
            self.exit(0)
        else:
            self.notify(f"unknown command :{visible(text)}", severity="warning", markup=False)

    def action_refresh_now(self) -> None:
        """Re-render everything now."""
        self.model.dirty.update(
            ("instances", "containers", "forwards", "processes", "serial", "header")
        )
        self.ctx.host_line = self.host_info()
        self.flush()

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        """The palette: Textual's commands, every key's action, and each theme."""
        yield from super().get_system_commands(screen)
        for group, bindings in self.help_groups():
            for binding in bindings:
                if binding.id == "app.help" or (binding.id or "").startswith(
                    ("logs.", "detail.", "list.")
                ):
                    continue  # (the log view's own keys only make sense inside it)
                yield SystemCommand(
                    f"{group}: {binding.description}",
                    f"key {binding.key} · {binding.id}",
                    self._palette_action(binding),
                )
        for name in sorted(self.available_themes):
            yield SystemCommand(
                f"Theme: {name}",
                "switch the dashboard theme",
                lambda n=name: setattr(self, "theme", n),
            )
        yield SystemCommand("Help: keys", "every key, grouped by pane", self.action_help)

    def _palette_action(self, binding: Binding) -> Callable[[], None]:
        """Focus the binding's pane, then run its action there (as the key would)."""
        prefix = (binding.id or "").split(".")[0]
        number = {"instance": 1, "container": 2, "forward": 3, "process": 4, "serial": 5}.get(
            prefix
        )

        def run() -> None:
            target: object = self
            if number is not None:
                pane = self.panes[number - 1]
                pane.focus_pane()
                name = binding.action.split("(")[0]
                if not binding.action.startswith("app."):
                    target = pane.main if hasattr(pane.main, f"action_{name}") else pane
            self.call_after_refresh(self.run_action, binding.action, target)

        return run

    # --- what panes ask for -----------------------------------------------------------------

    @on(InstanceSelected)
    def _instance_selected(self, message: InstanceSelected) -> None:
        self.select_instance(message.name)

    @on(ScreenRequested)
    def _screen_requested(self, message: ScreenRequested) -> None:
        self.push_screen(message.screen, message.done)

    @on(ActionRequested)
    def _action_requested(self, message: ActionRequested) -> None:
        self.run_worker(message.command, group="actions", exit_on_error=False)

    @on(ShellRequested)
    def _shell_requested(self, message: ShellRequested) -> None:
        if self.is_web:  # a browser tab has no terminal to hand over (envdeck serve)
            self._shell_in_terminal(message)
        else:
            self._shell(message.argv)

    @work(thread=True, group="lookups", exit_on_error=False)
    def _shell_in_terminal(self, message: ShellRequested) -> None:
        """Say that a shell needs a terminal, and what to run there."""
        command = message.terminal or shlex.join(message.argv())
        self.call_from_thread(
            self.notify,
            "A shell needs a real terminal; this dashboard runs in a browser. "
            f"Run it in a terminal:\n{visible(command)}",
            title="shell",
            severity="warning",
            timeout=20,
            markup=False,
        )

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
                visible(f"{exc.__class__.__name__}: {exc}") + "\n" + visible(shlex.join(argv)),
                title="shell",
                severity="error",
                markup=False,
            )
            return
        finally:
            self._suspended = False
        self.action_refresh_now()
        if completed.returncode not in (0, 130):
            self.notify(f"shell exited with {completed.returncode}", severity="warning")

    @on(Worker.StateChanged)
    def _worker_done(self, event: Worker.StateChanged) -> None:
        worker = event.worker
        if event.state == WorkerState.ERROR:
            error = worker.error
            self.notify(
                visible(str(error) or error.__class__.__name__),
                title="action failed",
                severity="error",
                timeout=8,
                markup=False,
            )
        elif event.state == WorkerState.SUCCESS and worker.group == "actions":
            if worker.result:
                self.notify(visible(worker.result), timeout=4, markup=False)
            self.hub.poke()  # sources that can rescan now (e.g. after create/delete)


def settle_garbage_collector() -> None:
    """After start-up: what is alive now (modules, widgets, styles: most of the heap) is frozen
    out of the collector's full passes, which walked it all again every few seconds while idle;
    the collector is on again if ``envdeck`` held it off while the dashboard loaded."""
    gc.freeze()
    gc.enable()


def run_dashboard(
    theme: str | None = None,
    readonly: bool = False,
    sources: list | None = None,
    live: LiveStart | None = None,
) -> int:
    """Open the dashboard; returns the exit code. ``live``: the live sources, started already
    (``envdeck`` starts them before it imports the dashboard)."""
    app = EnvdeckApp(sources, theme=theme, readonly=readonly, live=live)
    return int(app.run() or 0)
