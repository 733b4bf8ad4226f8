"""Fixtures for driving the dashboard: a synthetic replay, a fake backend, a frozen host line."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from synthetic import events, write_recording  # noqa: E402

from envdeck.backend.recording import ReplaySource  # noqa: E402
from envdeck.tui import actions  # noqa: E402
from envdeck.tui.app import EnvdeckApp  # noqa: E402
from envdeck.tui.settings import UISettings  # noqa: E402

HOST_LINE = "testhost x86_64 · 2 cpus · load 0.50 · mem 1.0G/4.0G"
TERMINAL = (160, 48)


@pytest.fixture(autouse=True)
def private_dirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No user config or themes leak in; instance dirs live in tmp."""
    monkeypatch.setenv("ENVDECK_CONFIG", str(tmp_path / "config"))
    monkeypatch.setenv("ENVDECK_HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture
def recording(tmp_path: Path) -> Path:
    """The synthetic session (generated here, not a real recording)."""
    return write_recording(tmp_path / "synthetic.jsonl")


class FakeBackend:
    """Records every backend call the dashboard makes (through tui/actions.py)."""

    def __init__(self) -> None:
        self.calls: list[tuple] = []

    def __call__(self, name: str, attr: str) -> Callable:
        def sync(*args, **kwargs):
            self.calls.append((f"{name}.{attr}", *args, *sorted(kwargs.items())))
            if attr in ("shell_argv", "qemu_argv"):
                return ["echo", attr, *map(str, args)]
            return "ok"

        async def coro(*args, **kwargs):
            return sync(*args, **kwargs)

        return coro if attr in ("start", "stop", "restart", "delete", "container_action") else sync


@pytest.fixture
def backend(monkeypatch: pytest.MonkeyPatch) -> FakeBackend:
    """Replace the backend modules behind tui/actions.py with a recorder."""
    fake = FakeBackend()
    monkeypatch.setattr(actions, "_backend", fake)
    return fake


def make_app(recording: Path, **kwargs) -> EnvdeckApp:
    """The real dashboard over the synthetic replay (played at once), host line frozen."""
    settings = kwargs.pop("settings", None) or UISettings()
    return EnvdeckApp([ReplaySource(recording, speed=0)], settings=settings, host_info=lambda: HOST_LINE, **kwargs)


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


async def actions_done(app: EnvdeckApp) -> None:
    """Wait for the action/lookup workers (not the hub consumer, which runs until exit)."""
    for _ in range(3):  # a finished worker may post follow-up work (a screen, a notification)
        pending = [w for w in app.workers if w.group != "hub"]
        if pending:  # (an empty list would mean "every worker", the hub's included)
            await app.workers.wait_for_complete(pending)
        await asyncio.sleep(0.01)
