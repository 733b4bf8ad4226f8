"""The one-line header: host summary, counts, and the mode (replay, read-only)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.text import Text

from ..proctree import summarize
from .line import Line

if TYPE_CHECKING:
    from ..app import EnvdeckApp


class HostHeader(Line):
    """Re-rendered when the model marks ``header`` dirty, and every few seconds."""

    def render_model(self) -> None:
        """Counts from the model, host line from the app's host_info."""
        app: EnvdeckApp = self.app  # type: ignore[assignment]
        model = app.model
        out = Text()
        out.append(" envdeck ", style="bold reverse")
        for tag in app.mode_tags:
            out.append(" ")
            out.append(f" {tag} ", style="bold reverse")
        out.append(f" {app.host_line} ")
        ready = sum(1 for s in model.instances.values() if s.state == "ready")
        out.append(f"│ {len(model.instances)} instances ({ready} ready) ")
        emulated_ct = sum(1 for c in model.containers.values() if c.emulated)
        out.append(f"│ {len(model.containers)} containers")
        out.append(f" ({emulated_ct} emulated) " if emulated_ct else " ")
        count, cpu, _ = summarize(model.processes.get("host", {}))
        style = app.colours.get("emulated", "") if count else ""
        out.append("│ ")
        out.append(f"{count} emulated processes · {cpu:.0f} % CPU", style=style)
        self.set(out)
