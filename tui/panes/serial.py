"""Pane 5: the serial console of the selected instance — bounded window, batched writes.

Its keys follow, timestamp, wrap, maximize, save the window and search the whole log on disk.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING

from rich.cells import cell_len, chop_cells
from rich.text import Text
from textual import events, on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import Input, Log

from envdeck.backend.text import visible

from ..formatting import plain_lines, plural
from .base import Pane
from .serial_search import search_log

if TYPE_CHECKING:
    from ..context import DashContext


class SerialLog(Log):
    """The Log, with End meaning "jump to the end and follow" (Log's own End only scrolls)."""

    BINDINGS = [
        Binding("end", "follow_end", "End + follow", id="serial.end"),
        Binding("j", "scroll_down", "Down", show=False, id="serial.down"),
        Binding("k", "scroll_up", "Up", show=False, id="serial.up"),
        Binding("g", "top", "Top (pauses follow)", show=False, id="serial.top"),
        Binding("G", "follow_end", "End + follow", show=False, id="serial.bottom"),
    ]

    def action_top(self) -> None:
        """The first line; following stops (new lines would pull the view away)."""
        self.auto_scroll = False
        self.scroll_home(animate=False)
        if isinstance(self.parent, SerialPane):
            self.parent.ctx.model.dirty.add("serial")  # (the title says paused)

    def action_follow_end(self) -> None:
        """Delegate to the pane."""
        pane = self.parent
        if isinstance(pane, SerialPane):
            pane.action_end()


class SerialPane(Pane):
    """A ``Log`` fed by ``write_lines`` once per refresh tick (never per line)."""

    number = 5
    title = "Serial"
    pane_id = "serial"
    help_group = "Serial log"
    BINDINGS = [
        Binding("s", "follow", "Follow on/off", id="serial.follow"),
        Binding("t", "timestamps", "Timestamps on/off", id="serial.timestamps"),
        Binding("w", "wrap", "Wrap on/off", id="serial.wrap"),
        Binding("f", "fullscreen", "Full screen", id="serial.fullscreen"),
        Binding("ctrl+s", "save", "Save window", id="serial.save"),
        Binding("slash", "search", "Search whole log", id="serial.search"),
    ]

    def __init__(self, ctx: DashContext, **kwargs) -> None:  # noqa: ANN003 - Widget kwargs
        super().__init__(ctx, **kwargs)
        self.shown: str | None = None
        self.timestamps = False
        self.wrap = False
        self._wrapped_at = 0

    def compose(self) -> ComposeResult:
        """The log (the search input comes when first opened)."""
        yield SerialLog(id="serial-log", max_lines=self.ctx.model.serial_window, auto_scroll=True)

    @property
    def main(self) -> Log:
        """The log widget."""
        return self.query_one(Log)

    @property
    def follow(self) -> bool:
        """Whether new lines scroll the log."""
        return self.main.auto_scroll

    def render_model(self) -> None:
        """Write lines that arrived since the last tick; reload on instance change."""
        model = self.ctx.model
        name = self.ctx.selected_instance
        log = self.main
        if name != self.shown:
            self.reload(name)
        else:
            lines = model.take_serial(name) if name else []
            if name and lines:
                log.write_lines(self._format(name, lines))
        for other in list(model.serial_pending):  # other instances: the window holds them
            if other != name:
                model.serial_pending.pop(other, None)
        follow = "follow" if log.auto_scroll else "paused — End follows"
        self.set_title(f"{name} · {follow}" if name else "")
        if name is None and log.line_count == 0:
            log.write_line("Select an instance to see its serial console.")

    def reload(self, name: str | None) -> None:
        """Show the whole in-memory window of ``name`` again."""
        self.shown = name
        log = self.main
        log.clear()
        self.ctx.model.serial_pending.pop(name or "", None)
        lines = list(self.ctx.model.serial.get(name or "", ()))
        if lines and name:
            log.write_lines(self._format(name, lines))

    def _format(self, name: str, lines: list[str]) -> list[str]:
        """Lines as shown: control characters visible (Log only blanks NUL..DC4: ESC, OSC and C1
        would reach the terminal), timestamps and wrapping as chosen."""
        lines = [visible(line, keep_tabs=True) for line in lines]
        if self.timestamps:
            pairs = self.ctx.model.serial_with_times(name, len(lines))
            if len(pairs) == len(
                lines
            ):  # else a flood outran the window: no times for the overflow
                lines = [
                    time.strftime("%H:%M:%S ", time.localtime(ts)) + visible(line, keep_tabs=True)
                    for ts, line in pairs
                ]
        return self._wrap(lines) if self.wrap else lines

    def _wrap(self, lines: list[str]) -> list[str]:
        """Split lines wider than the log into rows (the Log widget does not wrap by itself)."""
        width = self._wrapped_at = max(20, self.main.scrollable_content_region.width - 1)
        rows: list[str] = []
        for line in lines:
            if cell_len(line) <= width:
                rows.append(line)
            else:
                rows.extend(chop_cells(line, width))
        return rows

    def action_wrap(self) -> None:
        """Wrap long lines at the pane's width, or let them run off to the right (reloads)."""
        self.wrap = not self.wrap
        self.reload(self.shown)

    def on_resize(self, _event: events.Resize) -> None:
        """Wrapped rows follow the new width."""
        if self.wrap and self.main.scrollable_content_region.width - 1 != self._wrapped_at:
            self.reload(self.shown)

    def action_timestamps(self) -> None:
        """Prefix each line with the time it arrived (reloads the window)."""
        self.timestamps = not self.timestamps
        self.reload(self.shown)

    def action_follow(self) -> None:
        """Toggle autoscroll."""
        self.main.auto_scroll = not self.main.auto_scroll
        if self.main.auto_scroll:
            self.main.scroll_end(animate=False)
        self.render_model()

    def action_end(self) -> None:
        """Jump to the end and follow."""
        self.main.auto_scroll = True
        self.main.scroll_end(animate=False)
        self.render_model()

    def action_fullscreen(self) -> None:
        """Maximize the pane (Esc or f restores)."""
        if self.screen.maximized is self:
            self.screen.minimize()
        else:
            self.screen.maximize(self, container=False)

    def action_save(self) -> None:
        """Write the in-memory window to a file in the working directory."""
        name = self.shown or "serial"
        path = Path.cwd() / f"envdeck-{name}-{time.strftime('%Y%m%d-%H%M%S')}.log"
        lines = list(self.ctx.model.serial.get(name, ()))
        self._save(path, "\n".join(lines) + "\n")

    @work(thread=True, group="lookups", exit_on_error=False)
    def _save(self, path: Path, text: str) -> None:
        path.write_text(text)
        self.notify(visible(f"saved {path}"), markup=False)

    def action_search(self) -> None:
        """Ask for a pattern; the search runs over the whole log on disk."""
        field = self.input_line(
            "serial-search", "search the whole serial log (regex) — Enter searches, Esc closes"
        )
        field.display = True
        field.focus()

    @on(Input.Submitted, "#serial-search")
    def _search(self, event: Input.Submitted) -> None:
        event.input.display = False
        self.main.focus()
        if event.value and self.shown:
            self._search_log(self.shown, event.value)

    @work(thread=True, group="lookups", exit_on_error=False, exclusive=True)
    def _search_log(self, name: str, pattern: str) -> None:
        """Search the instance's whole serial log on disk (not only the window)."""
        from ..screens.modals import TextScreen

        hits, total = search_log(self.ctx.backend.serial_log_path(name), pattern)
        body = (
            plain_lines("\n".join(hits))
            if hits
            else Text("no matches (the log on disk is empty or has none)")
        )
        title = f"/{pattern} in {name}'s serial log: {plural(total, 'line')}" + (
            f" (first {len(hits)})" if total > len(hits) else ""
        )
        self.show_screen(TextScreen(title, body, id="search"))

    def on_key(self, event) -> None:  # noqa: ANN001 - textual.events.Key
        """Esc closes the search input."""
        field = self.opened_input("serial-search")
        if event.key == "escape" and field is not None and field.has_focus:
            field.display = False
            self.main.focus()
            event.stop()
