"""Helpers for driving the dashboard in tests: the app over a synthetic replay, waits."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

from envdeck.backend.recording import ReplaySource
from envdeck.tui.app import EnvdeckApp
from envdeck.tui.settings import UISettings
from tests.e2e.synthetic import events

HOST_LINE = "testhost x86_64 · 2 cpus · load 0.50 · mem 1.0G/4.0G"
TERMINAL = (160, 48)


class FakeBackend:
    """Records every backend call the dashboard makes (through tui/actions.py)."""

    def __init__(self) -> None:
        self.calls: list[tuple] = []

    def __call__(self, name: str, attr: str) -> Callable:
        def sync(*args, **kwargs):
            self.calls.append((f"{name.split('.')[0]}.{attr}", *args, *sorted(kwargs.items())))
            if attr == "logs":
                return iter([f"log line {n}" for n in range(30)])
            if attr in ("shell_argv", "qemu_argv"):
                return ["echo", attr, *map(str, args)]
            return "ok"

        async def coro(*args, **kwargs):
            return sync(*args, **kwargs)

        asynchronous = (
            "start",
            "stop",
            "restart",
            "delete",
            "container_action",
            "forward_add",
            "forward_remove",
        )
        return coro if attr in asynchronous else sync


def make_app(recording: Path, **kwargs) -> EnvdeckApp:
    """The real dashboard over the synthetic replay (played at once), host line frozen."""
    settings = kwargs.pop("settings", None) or UISettings()
    return EnvdeckApp(
        [ReplaySource(recording, speed=0)], settings=settings, host_info=lambda: HOST_LINE, **kwargs
    )


async def settle(pilot, app: EnvdeckApp) -> None:
    """Wait until the replay has played every event and the panes show it."""
    total = len(events())
    source = app.sources[0]
    for _ in range(200):
        if source.events_played >= total:
            break
        await pilot.pause(0.02)
    await pilot.pause()
    app.flush()
    await pilot.pause()
    # DataTables size their columns on a later idle pass: let it run before anything covers them
    # (a modal pushed first would freeze half-sized columns into a snapshot). Test-only peek at
    # DataTable's pending-work flags.
    from textual.widgets import DataTable

    def busy() -> bool:
        return any(t._require_update_dimensions or t._updated_cells for t in app.query(DataTable))

    # Quiet twice in a row, a moment apart: a late row can widen a column after the first
    # quiet pass (seen as a flaky Instances table in the snapshots).
    quiet = 0
    for _ in range(200):
        quiet = 0 if busy() else quiet + 1
        if quiet >= 2:
            break
        await pilot.pause(0.05)
    await pilot.wait_for_scheduled_animations()


async def actions_done(app: EnvdeckApp) -> None:
    """Wait for the action/lookup workers (not the hub consumer, which runs until exit)."""
    for _ in range(3):  # a finished worker may post follow-up work (a screen, a notification)
        pending = [w for w in app.workers if w.group != "hub"]
        if pending:  # (an empty list would mean "every worker", the hub's included)
            await app.workers.wait_for_complete(pending)
        await asyncio.sleep(0.01)
