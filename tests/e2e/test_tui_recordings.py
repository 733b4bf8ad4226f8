"""The shipped recordings (real runs) still play in the dashboard and show what they recorded."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from rich.style import Style

from envdeck.backend.recording import ReplaySource, read_recording
from envdeck.tui.app import EnvdeckApp
from envdeck.tui.settings import HighlightRule, UISettings
from envdeck.tui.widgets.procview import ProcessView
from tests.e2e.tui_harness import HOST_LINE, TERMINAL, make_app, settle

pytestmark = pytest.mark.e2e

RECORDINGS = Path(__file__).resolve().parents[2] / "recordings"


async def replayed(path: Path, pilot, app: EnvdeckApp) -> None:
    total = sum(1 for _ in read_recording(path))
    source = app.sources[0]
    for _ in range(300):
        if source.events_played >= total:
            break
        await pilot.pause(0.02)
    app.flush()
    await pilot.pause()


async def test_tiny_boot_recording():
    path = RECORDINGS / "tiny-boot.jsonl"
    app = EnvdeckApp(
        [ReplaySource(path, speed=0)], settings=UISettings(), host_info=lambda: HOST_LINE
    )
    async with app.run_test(size=TERMINAL) as pilot:
        await replayed(path, pilot, app)
        assert app.model.instances["tiny"].state == "stopped"  # it was booted, then stopped
        assert [s.stage for s in app.model.ordered_stages("tiny")][-1] == "ready"
        assert app.model.serial["tiny"] and app.model.processes["host"]


async def test_emulated_processes_recording():
    path = RECORDINGS / "emulated-processes.jsonl"
    app = EnvdeckApp(
        [ReplaySource(path, speed=0)], settings=UISettings(), host_info=lambda: HOST_LINE
    )
    async with app.run_test(size=TERMINAL) as pilot:
        await replayed(path, pilot, app)
        await pilot.press("4", "e")
        rows = [r.row for r in app.query_one(ProcessView).rows if r.matched]
        assert rows and all(r["emulated"]["arch"] == "aarch64" for r in rows)


async def test_arm64_container_beside_amd64_recording():
    path = RECORDINGS / "containers-arm64.jsonl"
    app = EnvdeckApp(
        [ReplaySource(path, speed=0)], settings=UISettings(), host_info=lambda: HOST_LINE
    )
    async with app.run_test(size=TERMINAL) as pilot:
        await replayed(path, pilot, app)
        await pilot.press("4", "e")
        rows = [r.row for r in app.query_one(ProcessView).rows if r.matched]
        assert rows and {r["container"] for r in rows} == {"arm-loop"}
        assert all(r["emulated"]["arch"] == "aarch64" for r in rows)
        screen = app.export_screenshot()
        assert "linux/arm64" in screen and "linux/amd64" in screen and "emulated" in screen


async def test_user_highlight_rules_style_matching_rows(recording: Path):
    rule = HighlightRule({"command": re.compile("httpd")}, Style.parse("bold yellow"))
    app = make_app(recording, settings=UISettings(highlight=[rule]))
    async with app.run_test(size=TERMINAL) as pilot:
        await settle(pilot, app)
        view = app.query_one(ProcessView)
        index = next(i for i, r in enumerate(view.rows) if r.row["pid"] == 951)
        other = next(i for i, r in enumerate(view.rows) if r.row["pid"] == 950)
        assert list(view.render_line(index))[0].style.color.name == "yellow"
        assert list(view.render_line(other))[0].style.color.name != "yellow"


async def test_a_replay_shows_the_recording_not_this_host_and_marks_its_end():
    """Issue #16 item 14: the header names the recording instead of this host's load and
    memory, and says REPLAYED once every event has played."""
    path = RECORDINGS / "tiny-boot.jsonl"
    app = EnvdeckApp([ReplaySource(path, speed=0)], settings=UISettings())
    async with app.run_test(size=TERMINAL) as pilot:
        await replayed(path, pilot, app)
        for _ in range(100):  # the end is noticed on the next one-second tick
            if "REPLAYED" in app.ctx.mode_tags:
                break
            await pilot.pause(0.05)
        app.flush()
        await pilot.pause()
        header = str(app.query_one("#header").render())
        assert "REPLAYED" in header and "recording tiny-boot.jsonl" in header
        assert "load" not in header and "mem " not in header
