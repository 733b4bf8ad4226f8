"""Resource graphs: block-character sparklines for table cells and the header (Rich Text); the
taller graphs of the details screen are :mod:`.charts` (Textual's Sparkline, loaded with it).

Table cells get Rich Text, not the Sparkline widget: a DataTable cell holds a renderable, not a
widget, and text keeps FitTable's column fitting (a cell's width is its text's) and the plain
comparison that updates only changed cells.
"""

from __future__ import annotations

from collections.abc import Sequence

from rich.text import Text

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
