"""Helpers for driving the dashboard in tests: the app over a synthetic replay, waits."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from envdeck.backend.api import Backend, ContainerAction, LineStream, Progress
from envdeck.backend.recording import ReplaySource
from envdeck.backend.store import InstanceDir
from envdeck.tui.app import EnvdeckApp
from envdeck.tui.settings import UISettings
from tests.e2e.synthetic import events

HOST_LINE = "testhost x86_64 · 2 cpus · load 0.50 · mem 1.0G/4.0G"
TERMINAL = (160, 48)


class FakeBackend(Backend):
    """The dashboard's Backend as a recorder: every call is kept as (method name, *args)."""

    def __init__(self) -> None:
        self.calls: list[tuple] = []

    def _record(self, method: str, *args: object, **kwargs: object) -> str:
        self.calls.append((method, *args, *sorted(kwargs.items())))
        return "ok"

    async def start_instance(self, name: str) -> str:
        return self._record("start_instance", name)

    async def stop_instance(self, name: str) -> str:
        return self._record("stop_instance", name)

    async def restart_instance(self, name: str) -> str:
        return self._record("restart_instance", name)

    async def pause_instance(self, name: str) -> str:
        return self._record("pause_instance", name)

    async def resume_instance(self, name: str) -> str:
        return self._record("resume_instance", name)

    async def delete_instance(self, name: str, *, force: bool) -> str:
        return self._record("delete_instance", name, force=force)

    async def create_instance(
        self,
        name: str,
        *,
        template: str,
        cpus: int | None = None,
        memory_bytes: int | None = None,
        progress: Progress | None = None,
    ) -> str:
        if progress is not None:
            progress("building the image", 0.5)
        return self._record(
            "create_instance", name, template=template, cpus=cpus, memory_bytes=memory_bytes
        )

    def instance_shell_argv(self, name: str) -> list[str]:
        self._record("instance_shell_argv", name)
        return ["echo", "instance_shell_argv", name]

    def instance_qemu_argv(self, name: str) -> list[str]:
        self._record("instance_qemu_argv", name)
        return ["echo", "instance_qemu_argv", name]

    def instance_config_text(self, name: str) -> str:
        self._record("instance_config_text", name)
        raise FileNotFoundError(f"{name} has no instance.yaml in this replay")

    async def add_forward(self, name: str, spec: str) -> str:
        return self._record("add_forward", name, spec)

    async def remove_forward(self, name: str, guest: str) -> str:
        return self._record("remove_forward", name, guest)

    async def container_action(
        self, endpoint: str, ref: str, action: ContainerAction, *, force: bool = False
    ) -> str:
        return self._record("container_action", endpoint, ref, action, force=force)

    def container_shell_argv(self, endpoint: str, ref: str) -> list[str]:
        self._record("container_shell_argv", endpoint, ref)
        return ["echo", "container_shell_argv", endpoint, ref]

    def container_logs(self, endpoint: str, ref: str, *, tail: int) -> LineStream:
        self._record("container_logs", endpoint, ref, tail=tail)
        return Lines([f"log line {n}" for n in range(30)])

    def container_stats(self, endpoint: str, ref: str) -> dict[str, Any]:
        self._record("container_stats", endpoint, ref)
        return {"cpu_percent": 1.5, "memory_bytes": 1 << 20}

    async def send_signal(self, pid: int, start_time: float, sig: int) -> str:
        return self._record("send_signal", pid, start_time, sig)

    async def send_guest_signal(self, name: str, pid: int, start_ticks: int, sig: str) -> str:
        return self._record("send_guest_signal", name, pid, start_ticks, sig)

    def serial_log_path(self, name: str) -> Path:
        self._record("serial_log_path", name)
        return InstanceDir.of(name).serial_log  # (under the test's own ENVDECK_HOME)

    browser = True  # (a test sets False: a machine with no browser)

    def open_in_browser(self, url: str) -> bool:
        self._record("open_in_browser", url)
        return self.browser


class Lines:
    """A finished log stream."""

    def __init__(self, lines: list[str]) -> None:
        self._lines = iter(lines)

    def __iter__(self) -> Iterator[str]:
        return self

    def __next__(self) -> str:
        return next(self._lines)

    def close(self) -> None:
        self._lines = iter(())


def make_app(recording: Path, **kwargs) -> EnvdeckApp:
    """The real dashboard over the synthetic replay (played at once), host line frozen; the
    backend is a recorder unless the test passes one (``backend=``)."""
    settings = kwargs.pop("settings", None) or UISettings()
    backend = kwargs.pop("backend", None) or FakeBackend()
    return EnvdeckApp(
        [ReplaySource(recording, speed=0)],
        settings=settings,
        host_info=lambda: HOST_LINE,
        backend=backend,
        **kwargs,
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
