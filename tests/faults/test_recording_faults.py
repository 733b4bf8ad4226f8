"""Hostile and damaged recordings (issue #10 item 14): a line that is not a well-typed event is
skipped and counted, the rest plays; a hypothesis fuzz of the reader (random JSON values, valid
events with a field of the wrong type, random bytes) never raises and never hangs, and what it
yields never breaks the dashboard's model."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from envdeck.backend import events as ev
from envdeck.backend.recording import RecordingReader, ReplaySource
from envdeck.tui.model import DashboardModel

ROW = {
    "pid": 7,
    "ppid": 1,
    "user": "root",
    "uid": 0,
    "state": "S",
    "cpu_percent": 1.5,
    "rss_bytes": 4096,
    "start_time": 1700000000.0,
    "start_ticks": 12,
    "name": "sh",
    "cmdline": ["sh", "-c", "true"],
    "exe": "/bin/sh",
    "kernel": False,
    "depth": 0,
    "container": None,
    "container_id": None,
    "emulated": {
        "arch": "aarch64",
        "interpreter": "/usr/bin/qemu-aarch64",
        "program": "/bin/sh",
        "argv": ["sh"],
        "command": "sh",
        "preserve_argv0": False,
        "arch_source": "interpreter",
    },
}

# One well-formed event of every kind (their JSON form), the seeds of the wrong-type fuzz.
VALID: list[dict[str, Any]] = [
    ev.InstanceStatus(
        ts=1.0, instance="a", state="ready", cpus=2, memory_bytes=1 << 30, started_at=0.5
    ).to_dict(),
    ev.BootStage(ts=1.0, instance="a", stage="kernel", status="done", elapsed_s=1.2).to_dict(),
    ev.SerialOutput(ts=1.0, instance="a", lines=["one", "two"]).to_dict(),
    ev.AgentMessage(ts=1.0, instance="a", level="warning", text="hm").to_dict(),
    ev.ForwardStatus(
        ts=1.0, instance="a", guest="80", host="127.0.0.1:8080", source="rule", state="active"
    ).to_dict(),
    ev.ForwardRemoved(ts=1.0, instance="a", guest="80").to_dict(),
    ev.EndpointStatus(ts=1.0, endpoint="host", reachable=True, native_arch="amd64").to_dict(),
    ev.ContainerInfo(
        ts=1.0,
        endpoint="host",
        id="abc",
        name="web",
        image="nginx",
        state="running",
        status="Up",
        ports=["80/tcp"],
    ).to_dict(),
    ev.ContainerRemoved(ts=1.0, endpoint="host", id="abc").to_dict(),
    ev.ProcessDiff(
        ts=1.0, host="host", full=True, added=[ROW], changed=[{"pid": 7, "cpu_percent": 3.0}]
    ).to_dict(),
    ev.ProcessesUnavailable(ts=1.0, host="a", reason="ssh down").to_dict(),
]

GOOD = json.dumps({"t": 0.0, **VALID[3]})


def write_lines(path: Path, lines: list[bytes]) -> Path:
    path.write_bytes(b"".join(line + b"\n" for line in lines))
    return path


@pytest.mark.parametrize(
    "bad",
    [
        json.dumps({"t": 0, **VALID[0], "memory_bytes": "lots"}).encode(),
        json.dumps({"t": 0, **VALID[2], "lines": 12345}).encode(),
        b"[1,2]",
        json.dumps({**VALID[3], "t": "soon"}).encode(),
        b'{"t": 0, "kind": "instance.message", "instance": "a", "level": "info", "text": "\xff"}',
        json.dumps({"t": 0, **VALID[9], "added": [{**ROW, "cmdline": "sh -c true"}]}).encode(),
        json.dumps({"t": 0, **VALID[0], "ts": 1e999}).encode(),
        b'{"t": 0, "kind": "instance.message", "ts": 1, "instance": "a", "level": "info", '
        b'"text": "\\ud800"}',
        b"[" * 100_000,
        b'{"t": 0, "kind": "instance.status", "instance": "a", "state": "x", "cpus": '
        + b"9" * 5000
        + b"}",
    ],
    ids=[
        "memory-lots",
        "lines-number",
        "array",
        "t-soon",
        "bad-utf8",
        "cmdline-string",
        "ts-infinite",
        "lone-surrogate",
        "deep-nesting",
        "huge-int",
    ],
)
def test_a_bad_line_is_skipped_and_counted_and_playback_goes_on(tmp_path: Path, bad: bytes):
    path = write_lines(tmp_path / "r.jsonl", [GOOD.encode(), bad, GOOD.encode()])
    reader = RecordingReader(path)
    events = [event for _, event in reader]
    assert [type(e) for e in events] == [ev.AgentMessage, ev.AgentMessage]
    assert reader.skipped == 1 and reader.problems[0].startswith(f"{path}:2: ")
    assert "1 bad line of the recording skipped" in reader.summary()


async def test_replay_source_plays_past_bad_lines_and_says_how_many(tmp_path: Path):
    path = write_lines(
        tmp_path / "r.jsonl", [b"[1,2]", GOOD.encode(), b"\xff\xfe", GOOD.encode(), b"42"]
    )
    source = ReplaySource(path, speed=0)
    played: list[ev.Event] = []
    await source.run(played.append)
    assert len(played) == 2 and source.events_played == 2 and source.skipped == 3


def test_an_over_long_line_is_skipped_without_reading_it_whole(tmp_path: Path, monkeypatch):
    monkeypatch.setattr("envdeck.backend.recording.MAX_LINE_BYTES", 1000)
    long = json.dumps({"t": 0, **VALID[3], "text": "x" * 5000}).encode()
    path = write_lines(tmp_path / "r.jsonl", [long, GOOD.encode()])
    reader = RecordingReader(path)
    assert len(list(reader)) == 1 and reader.skipped == 1 and "longer than" in reader.problems[0]


# --- fuzz -------------------------------------------------------------------------------------

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)


@st.composite
def swapped_events(draw: st.DrawFn) -> dict[str, Any]:
    """A valid event with one or two fields (or a process row's key) set to any JSON value."""
    data = dict(draw(st.sampled_from(VALID)))
    for _ in range(draw(st.integers(1, 2))):
        key = draw(st.sampled_from(sorted(data)))
        if key in ("added", "changed") and draw(st.booleans()):
            row = dict(ROW)
            row[draw(st.sampled_from(sorted(ROW)))] = draw(json_values)
            data[key] = [row]
        else:
            data[key] = draw(json_values)
    return {"t": draw(json_values | st.floats(0, 10)), **data}


def encode(value: Any) -> bytes:
    return json.dumps(value, allow_nan=True).encode()


lines = st.one_of(
    json_values.map(encode),
    swapped_events().map(encode),
    st.sampled_from(VALID).map(lambda d: encode({"t": 0.5, **d})),
    st.binary(max_size=60).map(lambda b: b.replace(b"\n", b" ")),
)


@pytest.mark.timeout(300)
@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(lines, min_size=1, max_size=60))
def test_fuzz_the_reader_only_skips_and_counts(tmp_path_factory, batch: list[bytes]):
    path = write_lines(tmp_path_factory.mktemp("fuzz") / "r.jsonl", batch)
    reader = RecordingReader(path)
    decoded = list(reader)
    non_blank = sum(1 for line in batch if line.strip())
    assert len(decoded) + reader.skipped == non_blank
    model = DashboardModel()
    for t, event in decoded:
        assert isinstance(t, float) and isinstance(event, ev.Event)
        model.apply(event)  # a well-typed event never breaks its consumer
    assert not model.errors
