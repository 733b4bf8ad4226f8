"""The dashboard's start (issue #14 item 2): the process tree's first scan is taken while the UI
builds (:class:`LiveStart`), the slower sources come after, and ``envdeck`` with no command
parses without importing any command module."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys

from envdeck.backend import events as ev
from envdeck.backend import live
from envdeck.backend.cli.main import opens_dashboard
from envdeck.backend.processes.host import ProcessSource
from envdeck.backend.sources import Hub
from tests.unit.test_recording import TickSource


async def test_a_primed_process_source_emits_its_first_scan_at_once():
    source = ProcessSource(interval=60)
    source.prime()
    events: list[ev.Event] = []
    task = asyncio.create_task(source.run(events.append))
    await asyncio.sleep(0)  # one step: a scan (in a thread) could not have come back yet
    try:
        assert len(events) == 1 and isinstance(events[0], ev.ProcessDiff)
        assert os.getpid() in {row["pid"] for row in events[0].added}
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_an_unprimed_process_source_scans_first():
    source = ProcessSource(interval=60)
    events: list[ev.Event] = []
    task = asyncio.create_task(source.run(events.append))
    await asyncio.sleep(0)
    try:
        assert events == []
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


def fake_sources(monkeypatch, first_broken: bool = False) -> None:
    def broken() -> TickSource:
        raise RuntimeError("no /proc here")

    def ticks() -> TickSource:
        return TickSource(1.0)

    monkeypatch.setattr(
        live,
        "LIVE_SOURCES",
        (
            live.LiveSource("processes", "the process tree", broken if first_broken else ticks),
            live.LiveSource("instances", "instances", ticks),
            live.LiveSource("containers", "containers", ticks),
        ),
    )


async def test_live_start_makes_the_first_source_then_the_rest_on_request(monkeypatch):
    fake_sources(monkeypatch)
    hub = Hub([])
    start = live.LiveStart()
    assert await start.start_first(hub)
    assert len(hub.sources) == 1  # the others wait for start_rest
    found = await start.start_rest(hub)
    assert len(hub.sources) == 3 and found.missing == set() and found.notices == []


async def test_live_start_says_why_the_first_source_is_missing(monkeypatch):
    fake_sources(monkeypatch, first_broken=True)
    hub = Hub([])
    start = live.LiveStart()
    assert not await start.start_first(hub)
    found = await start.start_rest(hub)
    assert len(hub.sources) == 2
    assert found.missing == {"processes"} and found.notices == [
        "the process tree: failed to start: no /proc here"
    ]


def test_no_command_opens_the_dashboard():
    assert opens_dashboard([]) and opens_dashboard(["--theme", "x", "--readonly"])
    assert not opens_dashboard(["--help"]) and not opens_dashboard(["ps"])
    assert not opens_dashboard(["--", "ps"])


def test_the_dashboards_command_line_imports_no_command_module():
    probe = (
        "import json, sys\n"
        "from envdeck.backend.cli.main import build_parser\n"
        "build_parser(['--readonly']).parse_args(['--readonly'])\n"
        "print(json.dumps(sorted(sys.modules)))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    ).stdout
    loaded = set(json.loads(out))
    assert not {m for m in loaded if m.startswith("envdeck.backend.cli.")} - {
        "envdeck.backend.cli.main"
    }


def test_the_dashboard_starts_without_the_libraries_only_later_sources_need(tmp_path):
    """Before its first frame the dashboard needs no YAML (no config file), SSH or docker SDK:
    those sources are made after the first rows (their imports are ~0.2 s)."""
    probe = (
        "import json, sys\n"
        "from envdeck.tui.app import EnvdeckApp\n"
        "EnvdeckApp([])\n"
        "print(json.dumps(sorted(sys.modules)))\n"
    )
    env = {**os.environ, "ENVDECK_CONFIG": str(tmp_path), "ENVDECK_HOME": str(tmp_path)}
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, env=env
    ).stdout
    heavy = ("yaml", "asyncssh", "docker", "psutil", "envdeck.backend.instances")
    assert [m for m in json.loads(out) if m.split(".")[0] in heavy or m.startswith(heavy)] == []
