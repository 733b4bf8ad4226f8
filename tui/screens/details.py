"""Enter's detail view: tabs (details, config, stats, top ...) switched with ``[`` and ``]``.

Each tab's text comes from a loader that runs in a thread (it may read files or ask dockerd),
so opening the view never blocks; a failing loader shows its error in its tab. A
:class:`LiveTab` is drawn by a widget that keeps itself current instead (the graphs).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, is_dataclass

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widget import Widget
from textual.widgets import Label, Static, TabbedContent, TabPane

from envdeck.backend import units
from envdeck.backend.text import visible

from ..formatting import plain, plain_lines

Loader = Callable[[], str | Text]


@dataclass(frozen=True)
class LiveTab:
    """A tab drawn by a widget that follows the model by itself (made when the screen opens)."""

    make: Callable[[], Widget]


TIME_KEYS = ("ts", "start_time", "started_at", "created", "finished_at")


def fields_text(item: object, *, now: float | None = None) -> Text:
    """A dataclass (an event) or a dict as ``key: value`` lines, as the CLI shows them: sizes in
    human units, times local with their age, percents with a %; nested values as compact JSON
    (which escapes control characters); every value made visible."""
    data = asdict(item) if is_dataclass(item) and not isinstance(item, type) else item
    if not isinstance(data, dict):
        return plain(data)
    now = time.time() if now is None else now
    width = max((len(str(k)) for k in data), default=0)
    out = Text()
    for key, value in data.items():
        if value is None or value == "" or value == [] or value == {}:
            continue
        out.append(f"{str(key):<{width}}  ", style="bold")
        out.append(visible(human_value(str(key), value, now)) + "\n")
    return out


def human_value(key: str, value: object, now: float) -> str:
    """One field's value for a person (see :func:`fields_text`)."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int | float):
        if key in TIME_KEYS or key.endswith("_at"):
            stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(value))
            return f"{stamp} ({units.human_duration(now - value)} ago)"
        if key.endswith("bytes") or key == "bytes":
            return units.human_bytes(value)
        if key.endswith("percent"):
            return f"{value:.1f} %"
        if key.endswith("_s") or key.endswith("seconds"):
            return f"{value:.1f}s"
        return str(value)
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return ", ".join(value)
    if isinstance(value, dict | list):
        return json.dumps(value, default=str)
    return str(value)


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
