"""A full-screen follow of a container's logs: a reader thread fills a queue, the UI drains it.

The thread never calls into the UI per line (``call_from_thread`` would block it on every call);
the screen drains the queue at 15 Hz with one ``write_lines``.
"""

from __future__ import annotations

import queue
from collections.abc import Callable, Iterator

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Label, Log

from envdeck.backend.text import visible

from ..formatting import plain

MAX_LINES = 5_000
DRAIN_HZ = 15


class LogScreen(ModalScreen[None]):
    """Follow a stream of lines until Esc; ``open_stream`` runs in a thread."""

    BINDINGS = [
        Binding("q", "dismiss", "Close", show=False, id="modal.close_q"),
        Binding("escape", "dismiss", "Close", id="logs.close"),
        Binding("s", "follow", "Follow on/off", id="logs.follow"),
    ]

    def __init__(self, title: str, open_stream: Callable[[], Iterator[str]]) -> None:
        super().__init__()
        self.title_text = title
        self.open_stream = open_stream
        self.lines: queue.SimpleQueue[str] = queue.SimpleQueue()
        self.stream: Iterator[str] | None = None
        self.closed = False

    def compose(self) -> ComposeResult:
        """Title and the log."""
        with Vertical(classes="modal-box logs"):
            yield Label(plain(self.title_text), classes="modal-title")
            yield Log(max_lines=MAX_LINES, auto_scroll=True)
            yield Label("Esc closes · s follow on/off", classes="modal-hint")

    def on_mount(self) -> None:
        """Start reading; drain at 15 Hz."""
        self.set_interval(1 / DRAIN_HZ, self.drain)
        self.read()

    @work(thread=True, group="logs", exit_on_error=False)
    def read(self) -> None:
        """Read lines into the queue until the stream ends or the screen closes."""
        stream = self.open_stream()
        self.stream = stream
        for line in stream:
            if self.closed:
                break
            self.lines.put(visible(line, keep_tabs=True))  # Log leaves ESC, OSC and C1 raw

    def drain(self) -> None:
        """Write whatever arrived since the last tick."""
        batch: list[str] = []
        while True:
            try:
                batch.append(self.lines.get_nowait())
            except queue.Empty:
                break
        if batch:
            self.query_one(Log).write_lines(batch[-MAX_LINES:])

    def action_follow(self) -> None:
        """Toggle autoscroll."""
        log = self.query_one(Log)
        log.auto_scroll = not log.auto_scroll

    def on_unmount(self) -> None:
        """Stop the reader (the backend stream may be closed from any thread)."""
        self.closed = True
        close = getattr(self.stream, "close", None)
        if callable(close):
            close()
