"""Enter's detail view: tabs (details, config, stats, top ...) switched with ``[`` and ``]``.

Each tab's text comes from a loader that runs in a thread (it may read files or ask dockerd),
so opening the view never blocks; a failing loader shows its error in its tab. A
:class:`LiveTab` is drawn by a widget that keeps itself current instead (the graphs).
"""

from __future__ import annotations

from collections.abc import Sequence

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Label, Static, TabbedContent, TabPane

from ..formatting import plain, plain_lines
from .fields import LiveTab, Loader


class DetailScreen(ModalScreen[None]):
    """Tabs of text about one selected thing."""

    BINDINGS = [
        Binding("q", "dismiss", "Close", show=False, id="modal.close_q"),
        Binding("escape", "dismiss", "Close", id="detail.close"),
        Binding("left_square_bracket", "tab(-1)", "Previous tab", id="detail.prev_tab"),
        Binding("right_square_bracket", "tab(1)", "Next tab", id="detail.next_tab"),
    ]

    def __init__(self, title: str, tabs: Sequence[tuple[str, Loader | LiveTab]]) -> None:
        super().__init__(id="details")
        self.title_text = title
        self.tabs = tabs

    def compose(self) -> ComposeResult:
        """One TabPane per loader, each with a placeholder until it loads."""
        with Vertical(classes="modal-box details"):
            yield Label(plain(self.title_text), classes="modal-title")
            with TabbedContent():
                for index, (name, loader) in enumerate(self.tabs):
                    with TabPane(name, id=f"tab-{index}"), VerticalScroll():
                        if isinstance(loader, LiveTab):
                            yield loader.make()
                        else:
                            yield Static(Text("loading…", style="italic"), id=f"body-{index}")
            yield Label("[ ] switch tabs · Esc closes", classes="modal-hint")

    def on_mount(self) -> None:
        """Start every loader."""
        for index, (_, loader) in enumerate(self.tabs):
            if not isinstance(loader, LiveTab):
                self.load(index, loader)

    @work(thread=True, group="details", exit_on_error=False)
    def load(self, index: int, loader: Loader) -> None:
        """Run one loader off the UI; show its text or its error."""
        try:
            body = loader()
        except Exception as exc:  # noqa: BLE001 - shown in the tab
            body = plain(f"not available: {exc}", style="italic")
        self.app.call_from_thread(self._show, index, body)

    def _show(self, index: int, body: str | Text) -> None:
        """A loader's str is data (a config file, command lines): shown line by line as text."""
        shown = plain_lines(body) if isinstance(body, str) else body
        for static in self.query(f"#body-{index}").results(Static):
            static.update(shown)

    def action_tab(self, step: int) -> None:
        """Previous/next tab."""
        tabs = self.query_one(TabbedContent)
        ids = [f"tab-{i}" for i in range(len(self.tabs))]
        current = ids.index(tabs.active) if tabs.active in ids else 0
        tabs.active = ids[(current + step) % len(ids)]
