"""Resource graphs on screen: the synthetic session plus a minute of ResourceStats (generated,
not recorded), through the real dashboard on Textual's pilot."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from textual.widgets import Sparkline

from envdeck.backend import events as ev
from envdeck.tui.screens.details import DetailScreen
from envdeck.tui.widgets.sparkline import BARS
from tests.e2e.synthetic import BASE_TS, events
from tests.e2e.tui_harness import TERMINAL, make_app, settle

pytestmark = pytest.mark.e2e

ARM = "container:host|" + "a1b2" * 16
WIDE = (200, 48)  # every column of both panes fits
SECONDS = 64  # (the last eight samples of tiny are 0, 14 ... 98 %)


def stats_events() -> list[tuple[float, ev.Event]]:
    """A rising QEMU CPU, the arm64 container's cgroup figures, the host's emulation cost."""
    out: list[tuple[float, ev.Event]] = []
    for second in range(SECONDS):
        t = 5.0 + second * 0.01  # played at once: only the order matters
        figures: list[ev.StatsFigures] = [
            {"subject": "host", "cpu_percent": 50.0, "emulated_cpu_percent": float(second)},
            {
                "subject": "instance:tiny",
                "cpu_percent": float(second % 8) * 14.0,
                "memory_bytes": 180 << 20,
            },
            {
                "subject": ARM,
                "cpu_percent": 38.0,
                "memory_bytes": 12 << 20,
                "emulated_cpu_percent": 38.0,
            },
        ]
        tiny_guest: ev.StatsFigures = {
            "subject": "instance:tiny",
            "guest_cpu_percent": 20.0,
            "guest_memory_bytes": 60 << 20,
            "guest_memory_total_bytes": 256 << 20,
        }
        for source, figs in (("host", figures), ("tiny", [tiny_guest])):
            event = ev.ResourceStats(source=source, figures=figs)
            event.ts = BASE_TS + t
            out.append((t, event))
    return out


@pytest.fixture
def graphs_recording(tmp_path: Path) -> Path:
    path = tmp_path / "graphs.jsonl"
    with open(path, "w", encoding="utf-8") as fh:
        for t, event in events() + stats_events():
            fh.write(json.dumps({"t": t, **event.to_dict()}) + "\n")
    return path


def screen_text(app) -> str:
    return "\n".join(strip.text for strip in app.screen._compositor.render_strips())


async def played(pilot, app) -> None:
    total = len(events()) + len(stats_events())
    for _ in range(200):
        if app.sources[0].events_played >= total:
            break
        await pilot.pause(0.02)
    await settle(pilot, app)


def line_with(text: str, needle: str) -> str:
    return next(
        line for line in text.splitlines() if f"│ {needle} " in line or f"  {needle} " in line
    )


async def test_sparklines_in_the_instances_and_containers_panes_and_the_header(graphs_recording):
    app = make_app(graphs_recording)
    async with app.run_test(size=WIDE) as pilot:
        await played(pilot, app)
        model = app.ctx.model
        assert len(model.stats.values("instance:tiny", "cpu_percent")) == SECONDS
        text = screen_text(app)
        # the last eight samples of tiny's QEMU CPU: 0, 14, ... 98 % of one core
        tiny = line_with(text, "tiny")
        assert "▁▂▃▄▅▆▇" in tiny and "98%" in tiny and "60M/256M" in tiny
        arm = line_with(text, "arm-loop")
        assert "▄▄▄▄▄▄▄▄   38%" in arm and "12M" in arm
        web = line_with(text, "web-amd64")  # running, no figures: no graph, no error
        assert not any(bar in web for bar in BARS[1:])
        stopped = line_with(text, "stopped-one")
        assert not any(bar in stopped for bar in BARS)
        header = text.splitlines()[0]
        assert header.rstrip().endswith("% CPU ▅▅▅▅▅▅▅▅")  # emulated CPU 56..63 %, scale 100


async def test_a_narrow_terminal_still_fits(graphs_recording):
    app = make_app(graphs_recording)
    async with app.run_test(size=(80, 24)) as pilot:
        await played(pilot, app)
        text = screen_text(app)
        assert all(len(line) <= 80 for line in text.splitlines())
        assert "ready" in line_with(text, "tiny") and "running" in line_with(text, "arm-loop")


async def test_details_show_larger_charts_of_the_last_minutes(graphs_recording):
    app = make_app(graphs_recording)
    async with app.run_test(size=TERMINAL) as pilot:
        await played(pilot, app)
        await pilot.press("1", "enter")
        await pilot.pause(0.2)
        assert isinstance(app.screen, DetailScreen)
        await pilot.press("left_square_bracket")  # (the last tab)
        await pilot.pause(0.2)
        charts = {s.id: s for s in app.screen.query(Sparkline)}
        assert set(charts) >= {"chart-cpu_percent", "chart-guest_cpu_percent"}
        assert len(charts["chart-cpu_percent"].data or []) == SECONDS
        text = screen_text(app)
        assert "CPU  now 98 %  min 0 %  max 98 %  (64 samples)" in text
        assert "guest memory  now 60M" in text


def test_graphs_snapshot(snap_compare, graphs_recording: Path):
    """The main screen with a minute of figures (deterministic: a replay played at once)."""
    app = make_app(graphs_recording)

    async def ready(pilot) -> None:
        await played(pilot, app)

    assert snap_compare(app, terminal_size=TERMINAL, run_before=ready)
