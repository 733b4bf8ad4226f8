"""Recordings: record() writes the event stream with offsets; ReplaySource plays it back.

The recordings here are synthetic, generated inside each test (tmp_path), not real runs.
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import pytest

from envdeck.backend import events as ev
from envdeck.backend.cli.main import build_parser
from envdeck.backend.errors import UserInputError
from envdeck.backend.recording import RecordingReader, ReplaySource, read_recording, record
from envdeck.backend.sources import Hub


class TickSource:
    """Emits a numbered AgentMessage every ``period`` seconds."""

    name = "ticks"

    def __init__(self, period: float) -> None:
        self.period = period

    async def run(self, emit) -> None:
        n = 0
        while True:
            emit(ev.AgentMessage(instance="i", level="info", text=str(n)))
            n += 1
            await asyncio.sleep(self.period)


def write(path: Path, items: list[tuple[float, ev.Event]]) -> Path:
    path.write_text("".join(json.dumps({"t": t, **e.to_dict()}) + "\n" for t, e in items))
    return path


async def test_record_writes_one_event_per_line_with_offsets(tmp_path: Path):
    path = tmp_path / "rec.jsonl"
    count = await record([TickSource(0.05)], path, seconds=0.3)
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert count == len(lines) >= 4
    assert (
        lines[0]["kind"] == "instance.message" and lines[0]["text"] == "0"
    )  # nothing lost at start
    offsets = [line["t"] for line in lines]
    assert offsets == sorted(offsets) and 0 <= offsets[0] < 0.1 and offsets[-1] <= 0.35
    assert [e.text for _, e in read_recording(path)] == [str(n) for n in range(count)]


async def test_record_from_a_running_hub_leaves_it_running(tmp_path: Path):
    hub = Hub([TickSource(0.02)])
    path = tmp_path / "rec.jsonl"
    task = asyncio.create_task(record(hub, path, seconds=0.2))
    await asyncio.sleep(0)
    await hub.start()
    try:
        assert await task > 0
        assert hub._tasks and not any(t.done() for t in hub._tasks)
    finally:
        await hub.stop()


async def test_replay_keeps_order_and_timing(tmp_path: Path):
    path = write(
        tmp_path / "r.jsonl",
        [
            (0.0, ev.AgentMessage(instance="i", level="info", text="a", ts=100.0)),
            (0.2, ev.AgentMessage(instance="i", level="info", text="b", ts=100.2)),
        ],
    )
    seen: list[tuple[float, str]] = []
    start = time.monotonic()
    source = ReplaySource(path, speed=1.0)
    await source.run(lambda e: seen.append((time.monotonic() - start, e.text)))
    assert [text for _, text in seen] == ["a", "b"]
    assert seen[1][0] >= 0.18
    assert 100.0 <= source.now() <= 101.0  # the recording's clock, not today's


async def test_replay_speed_zero_plays_at_once_and_freezes_the_clock(tmp_path: Path):
    path = write(
        tmp_path / "r.jsonl",
        [
            (t, ev.AgentMessage(instance="i", level="info", text=str(t), ts=500 + t))
            for t in (0.0, 30.0, 60.0)
        ],
    )
    source = ReplaySource(path, speed=0)
    seen: list[ev.Event] = []
    await asyncio.wait_for(source.run(seen.append), timeout=2)
    assert len(seen) == 3 and source.now() == 560.0


def test_unknown_kinds_and_bad_lines_are_skipped_and_counted_with_file_and_line(tmp_path: Path):
    path = tmp_path / "r.jsonl"
    path.write_text(
        '{"t":0,"kind":"from.the.future","x":1}\n'
        '{"t":0.1,"kind":"forward.removed","instance":"i","guest":"22","ts":1}\n'
        "not json\n"
    )
    reader = RecordingReader(path)
    assert [type(e) for _, e in reader] == [ev.ForwardRemoved]
    assert reader.skipped == 2 and reader.problems[1].startswith(f"{path}:3: not JSON")


def test_missing_recording_is_a_user_error(tmp_path: Path):
    with pytest.raises(UserInputError):
        ReplaySource(tmp_path / "nope.jsonl")


def test_cli_has_record_and_replay():
    parser = build_parser()
    args = parser.parse_args(["replay", "f.jsonl", "--speed", "4", "--theme", "envdeck-light"])
    assert args.speed == 4 and args.theme == "envdeck-light" and args.func.__name__ == "cmd_replay"
    args = parser.parse_args(["--theme", "x", "replay", "f.jsonl"])
    assert args.theme == "x" and args.readonly is False
    args = parser.parse_args(["record", "f.jsonl", "--seconds", "5"])
    assert args.seconds == 5 and args.func.__name__ == "cmd_record"


class PokedSource(TickSource):
    """A tick source that can be asked to rescan."""

    def __init__(self) -> None:
        super().__init__(1.0)
        self.pokes = 0

    def poke(self) -> None:
        self.pokes += 1


def test_a_hub_knows_its_replay_and_pokes_only_sources_that_can_rescan(tmp_path: Path):
    replay = ReplaySource(write(tmp_path / "r.jsonl", []))
    poked = PokedSource()
    hub = Hub([TickSource(1.0), poked, replay])
    hub.poke()
    assert poked.pokes == 1 and hub.replay() is replay
    assert Hub([TickSource(1.0), poked]).replay() is None


def test_a_live_source_that_cannot_start_is_a_notice_not_a_failure(monkeypatch):
    from envdeck.backend import live

    def broken() -> TickSource:
        raise RuntimeError("no /proc here")

    def not_installed() -> TickSource:
        raise ModuleNotFoundError("No module named 'docker'", name="docker")

    monkeypatch.setattr(
        live,
        "LIVE_SOURCES",
        (
            live.LiveSource("instances", "instances", lambda: TickSource(1.0)),
            live.LiveSource("containers", "containers", not_installed),
            live.LiveSource("processes", "the process tree", broken),
        ),
    )
    found = live.live_sources()
    assert [s.name for s in found.sources] == ["ticks"]
    assert found.missing == {"containers", "processes"}
    assert found.notices == [
        "containers: needs docker (not installed)",
        "the process tree: failed to start: no /proc here",
    ]
