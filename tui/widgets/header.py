"""The one-line header: host summary, counts, and the mode (replay, read-only).

It keeps to one line at any width: whole parts give way, least important first (the host's load
and memory before the counts, the counts before the mode tags), never a part cut mid-word. The
emulation cost over the last seconds is a sparkline of the emulated processes' CPU.
"""

from __future__ import annotations

from rich.cells import cell_len
from rich.text import Text

from ..context import DashContext
from ..formatting import plural
from ..proctree import summarize
from .line import Line
from .sparkline import spark


class HostHeader(Line):
    """Re-rendered when the model marks ``header`` dirty, every few seconds, and on resize."""

    def __init__(self, ctx: DashContext, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.ctx = ctx

    def on_resize(self) -> None:
        """Another width fits other parts."""
        self.render_model()

    def render_model(self) -> None:
        """Mode tags, the host line, counts from the model: as many whole parts as fit."""
        model = self.ctx.model
        # (priority, text): lower numbers stay longer
        parts: list[tuple[int, Text]] = [(0, Text(" envdeck ", style="bold reverse"))]
        for tag in self.ctx.mode_tags:
            parts.append((0, Text.assemble(" ", (f" {tag} ", "bold reverse"))))
        host = self.ctx.host_line.split(" · ")
        for index, piece in enumerate(host):
            parts.append((4 if index else 2, Text((" " if index == 0 else " · ") + piece)))
        ready = sum(1 for s in model.instances.values() if s.state == "ready")
        parts.append((1, Text(f" │ {plural(len(model.instances), 'instance')} ({ready} ready)")))
        emulated_ct = sum(1 for c in model.containers.values() if c.emulated)
        containers = f" │ {plural(len(model.containers), 'container')}"
        parts.append((3, Text(containers + (f" ({emulated_ct} emulated)" if emulated_ct else ""))))
        count, cpu, _ = summarize(model.processes.get("host", {}))
        style = self.ctx.colours.get("emulated", "") if count else ""
        emulated = Text(" │ ")
        emulated.append(f"{plural(count, 'emulated process', 'emulated processes')}", style=style)
        emulated.append(f" · {cpu:.0f} % CPU", style=style)
        parts.append((1, emulated))
        history = model.stats.values("host", "emulated_cpu_percent")
        if history:
            parts.append((3, Text(" " + spark(history), style=style)))
        width = self.size.width or 1_000
        while len(parts) > 1 and sum(cell_len(t.plain) for _, t in parts) > width:
            least = max(range(len(parts)), key=lambda i: (parts[i][0], i))
            del parts[least]
        self.set(Text("").join(t for _, t in parts))
