"""Taller graphs of the last minutes for the details screen: :class:`Charts`, one Textual
Sparkline per figure (imported when a details screen first shows graphs)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Label, Sparkline

from envdeck.backend.stats.ring import History

from ..formatting import human_bytes

# (figure, label, is a percent) in the order the details screen shows them
CHART_FIGURES = (
    ("cpu_percent", "CPU", True),
    ("guest_cpu_percent", "guest CPU", True),
    ("emulated_cpu_percent", "emulated CPU", True),
    ("memory_bytes", "memory", False),
    ("guest_memory_bytes", "guest memory", False),
)


def chart_label(label: str, values: Sequence[float], percent: bool) -> str:
    """``CPU  now 37 %  min 2 %  max 81 %  (last 4 min 10 s)``."""
    if not values:
        return f"{label}: no samples yet"

    def show(v: float) -> str:
        return f"{v:.0f} %" if percent else human_bytes(v)

    return (
        f"{label}  now {show(values[-1])}  min {show(min(values))}  max {show(max(values))}"
        f"  ({len(values)} samples)"
    )


class Charts(Vertical):
    """One labelled Sparkline per figure a subject has, refreshed every ``interval`` seconds
    from the model's history (figures that appear later are added)."""

    DEFAULT_CSS = """
    Charts { height: auto; }
    Charts Sparkline { height: 4; margin-bottom: 1; }
    """

    def __init__(
        self, history: Callable[[], History], subject: str, *, interval: float = 1.0
    ) -> None:
        super().__init__(classes="charts")
        self.history = history
        self.subject = subject
        self.interval = interval
        self._shown: list[str] = []

    def compose(self) -> ComposeResult:
        """A note until the first samples arrive."""
        yield Label(Text("no resource samples yet", style="italic"), id="charts-empty")

    def on_mount(self) -> None:
        """Draw now, then follow the history."""
        self.update_charts()
        self.set_interval(self.interval, self.update_charts)

    def update_charts(self) -> None:
        """Add charts for figures seen since, feed every chart its samples."""
        history = self.history()
        for figure, label, percent in CHART_FIGURES:
            values = history.values(self.subject, figure)
            if not values:
                continue
            text = chart_label(label, values, percent)
            if figure not in self._shown:
                self._shown.append(figure)
                self.query("#charts-empty").remove()
                self.mount(
                    Label(text, id=f"label-{figure}"), Sparkline(values, id=f"chart-{figure}")
                )
                continue
            self.query_one(f"#label-{figure}", Label).update(text)
            self.query_one(f"#chart-{figure}", Sparkline).data = values
