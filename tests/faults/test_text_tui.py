"""Terminal escape injection and markup (issue #10 items 4, 5) in the dashboard, driven by a
recording: a process whose command line, user and container hold OSC 52, a title change, a
screen clear, C1 controls, a newline and markup; a container and an instance named like markup;
serial lines with OSC and C1. What the screen shows has every control character made visible,
and no markup is parsed. A recording with bad lines says how many it skipped (item 14)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from envdeck.backend import events as ev
from envdeck.backend.recording import ReplaySource
from envdeck.tui.app import EnvdeckApp
from envdeck.tui.screens.modals import TextScreen
from envdeck.tui.settings import UISettings
from envdeck.tui.widgets.procview import ProcessView
from tests.e2e.test_tui_pilot import screen_text
from tests.e2e.tui_harness import HOST_LINE, TERMINAL, FakeBackend, actions_done

HOSTILE = "\x1b]52;c;aGVsbG8=\x07\x1b]0;pwned\x07\x1b[2J\x9b31m\nnext [/] [red]x"
CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\u2028\u2029]")


def raw_controls(screen: str) -> list[str]:
    """The screen lines that hold a control character (screen_text joins lines with \\n)."""
    return [line for line in screen.split("\n") if CONTROL.search(line)]


TS = 1_780_000_000.0


@pytest.fixture(autouse=True)
def private(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, envdeck_home: Path) -> Path:
    monkeypatch.setenv("ENVDECK_CONFIG", str(tmp_path / "config"))
    monkeypatch.chdir(tmp_path)
    return tmp_path


def hostile_events() -> list[ev.Event]:
    row = {
        "pid": 4242,
        "ppid": 1,
        "user": "u\x1b[2J",
        "state": "S",
        "cpu_percent": 1.0,
        "rss_bytes": 1 << 20,
        "start_time": TS - 10,
        "cmdline": ["evil", HOSTILE],
        "name": "[/x] [red]hidden",
        "depth": 0,
        "container": "c\x1b]0;t\x07",
        "emulated": None,
    }
    name = "[/]" + HOSTILE
    return [
        ev.InstanceStatus(
            ts=TS, instance=name, state="crashed", reason="EXT4-fs error [/dev/vda] " + HOSTILE
        ),
        ev.SerialOutput(ts=TS, instance=name, lines=[HOSTILE, "plain \x9d8;;x\x9c line"]),
        ev.AgentMessage(ts=TS, instance=name, level="error", text=HOSTILE),
        ev.EndpointStatus(ts=TS, endpoint="host", reachable=True, native_arch="amd64"),
        ev.ContainerInfo(
            ts=TS,
            endpoint="host",
            id="ab" * 32,
            name="[/]" + HOSTILE,
            image="img[/]",
            state="running",
            status="Up",
            ports=[HOSTILE],
        ),
        ev.ForwardStatus(
            ts=TS,
            instance=name,
            guest="[/]",
            host=HOSTILE,
            source="rule",
            state="conflict",
            reason=HOSTILE,
        ),
        ev.ProcessDiff(ts=TS, host="host", full=True, added=[row]),  # type: ignore[list-item]
    ]


def write(path: Path, items: list[ev.Event], extra: list[str] = ()) -> Path:
    with open(path, "w", encoding="utf-8") as fh:
        for event in items:
            fh.write(json.dumps({"t": 0.0, **event.to_dict()}) + "\n")
        for line in extra:
            fh.write(line + "\n")
    return path


async def played(pilot, app: EnvdeckApp, count: int) -> None:
    source = app.sources[0]
    for _ in range(200):
        if source.events_played + source.skipped >= count:
            break
        await pilot.pause(0.02)
    await pilot.pause(0.1)
    app.action_refresh_now()
    await pilot.pause(0.1)


async def test_hostile_text_in_every_pane_shows_as_visible_text(private: Path):
    events = hostile_events()
    path = write(private / "r.jsonl", events)
    app = EnvdeckApp(
        [ReplaySource(path, speed=0)],
        settings=UISettings(),
        host_info=lambda: HOST_LINE,
        backend=FakeBackend(),
    )
    async with app.run_test(size=TERMINAL) as pilot:
        await played(pilot, app, len(events))
        text = screen_text(app)
        assert not raw_controls(text)
        assert "\\e]52;c;aGVsbG8=\\x07" in text  # the process row and the serial pane
        assert "EXT4-fs error [/dev/vda]" in text  # markup is text
        view = app.query_one(ProcessView)
        assert view.selected is not None and view.selected["pid"] == 4242
        line = view.render_line(0).text
        assert "\\e]52" in line and not CONTROL.search(line)  # (cut at the pane's width)
        for key in ("x", "enter"):  # the command line, the details
            await pilot.press("4", key)
            await actions_done(app)
            await pilot.pause(0.1)
            shown = screen_text(app)
            assert "\\e]52" in shown and "\\nnext [/] [red]x" in shown and not raw_controls(shown)
            await pilot.press("escape")
        await pilot.press("4", "k")  # the signal picker and its title
        await pilot.pause(0.1)
        shown = screen_text(app)
        assert "Signal for 4242" in shown and not raw_controls(shown)
        await pilot.press("escape")
        await pilot.press("2", "x")  # a container named like markup: its command menu
        await pilot.pause(0.1)
        assert not raw_controls(screen_text(app))


async def test_a_recording_with_bad_lines_says_how_many_were_skipped(private: Path):
    events = hostile_events()[:3]
    bad = ['{"t": 0, "kind": "instance.status", "instance": "a", "state": "x", "cpus": "many"}']
    path = write(private / "r.jsonl", events, [*bad, "[1,2]"])
    with open(path, "ab") as fh:
        fh.write(b"\xff\xfe not utf-8\n")
    app = EnvdeckApp(
        [ReplaySource(path, speed=0)], settings=UISettings(), host_info=lambda: HOST_LINE
    )
    async with app.run_test(size=TERMINAL) as pilot:
        await played(pilot, app, len(events) + 3)
        app._every_second()
        await pilot.pause(0.1)
        app.action_refresh_now()
        await pilot.pause(0.1)
        assert "3 BAD LINES SKIPPED" in screen_text(app)
        assert len(app.model.instances) == 1  # the good lines played
        assert not isinstance(app.screen, TextScreen)
