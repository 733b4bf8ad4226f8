"""The one-line header: host summary, counts, and the mode (replay, read-only)."""

from __future__ import annotations

from rich.text import Text

from ..context import DashContext
from ..proctree import summarize
from .line import Line


class HostHeader(Line):
    """Re-rendered when the model marks ``header`` dirty, and every few seconds."""

    def __init__(self, ctx: DashContext, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.ctx = ctx

    def render_model(self) -> None:
        """Mode tags, the host line, counts from the model."""
        model = self.ctx.model
        out = Text()
        out.append(" envdeck ", style="bold reverse")
        for tag in self.ctx.mode_tags:
            out.append(" ")
            out.append(f" {tag} ", style="bold reverse")
        out.append(f" {self.ctx.host_line} ")
        ready = sum(1 for s in model.instances.values() if s.state == "ready")
        out.append(f"│ {len(model.instances)} instances ({ready} ready) ")
        emulated_ct = sum(1 for c in model.containers.values() if c.emulated)
        out.append(f"│ {len(model.containers)} containers")
        out.append(f" ({emulated_ct} emulated) " if emulated_ct else " ")
        count, cpu, _ = summarize(model.processes.get("host", {}))
        style = self.ctx.colours.get("emulated", "") if count else ""
        out.append("│ ")
        out.append(f"{count} emulated processes · {cpu:.0f} % CPU", style=style)
        self.set(out)
