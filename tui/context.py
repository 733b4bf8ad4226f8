"""What the app hands its panes: the model, the backend, the look and the shared selection.

Panes read from it and never call up into the app; they tell the app what happened with
the messages in :mod:`envdeck.tui.messages`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from envdeck.backend.api import Backend

from .model import DashboardModel
from .settings import UISettings


@dataclass
class DashContext:
    """The dashboard's shared state (one per app); the app keeps it current."""

    model: DashboardModel
    backend: Backend
    settings: UISettings
    clock: Callable[[], float]
    readonly: bool = False
    missing_sources: set[str] = field(default_factory=set)
    colours: dict[str, str] = field(default_factory=dict)  # the theme's, by variable name
    selected_instance: str | None = None  # drives the forwards and serial panes
    mode_tags: list[str] = field(default_factory=list)  # REPLAY, READ-ONLY
    host_line: str = ""
