"""Resource graphs: block-character sparklines for table cells and the header (Rich Text), and
:class:`Charts`, taller graphs of the last minutes for the details screen (Textual's Sparkline).

Table cells get Rich Text, not the Sparkline widget: a DataTable cell holds a renderable, not a
widget, and text keeps FitTable's column fitting (a cell's width is its text's) and the plain
comparison that updates only changed cells.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Label, Sparkline

from envdeck.backend.stats.ring import History

from ..formatting import human_bytes

BARS = "▁▂▃▄▅▆▇█"
CELL_SAMPLES = 8  # a table cell's sparkline: the last eight samples, one per cell
CPU_SCALE = 100.0  # the cells' scale: one busy core is a full bar (more cores: still full)


def spark(values: Sequence[float], width: int = CELL_SAMPLES, scale: float = CPU_SCALE) -> str:
    """The last ``width`` values as bars from 0 to ``scale``, padded on the left with the
    lowest bar (no history yet reads as flat, not as a gap)."""
    recent = list(values)[-width:]
    top = len(BARS) - 1
    bars = [
        BARS[max(0, min(top, round(v / scale * top)))] if scale > 0 else BARS[0] for v in recent
    ]
    return BARS[0] * (width - len(bars)) + "".join(bars)


def cpu_cell(history: History, subject: str, figure: str = "cpu_percent", style: str = "") -> Text:
    """``▁▂▅▇▃▁▁▂  37%``: the recent CPU of a subject, or ``-`` when none was measured."""
    values = history.values(subject, figure)
    if not values:
        return Text("-")
    return Text.assemble((spark(values), style), f" {values[-1]:4.0f}%")


def memory_cell(history: History, subject: str) -> str:
    """A subject's memory now: the guest's in use of its total when known, else its RSS or
    cgroup figure (of its limit when it has one); ``-`` when none was measured."""
    used = history.last(subject, "guest_memory_bytes")
    total = history.last(subject, "guest_memory_total_bytes")
    if used is None:
        used = history.last(subject, "memory_bytes")
        total = history.last(subject, "memory_limit_bytes")
    if used is None:
        return "-"
    return human_bytes(used) + (f"/{human_bytes(total)}" if total else "")


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
