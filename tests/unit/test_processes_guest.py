"""The guest /proc walk parser on a recorded busybox-sh walk, and GuestProcessSource's outages."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from envdeck.backend.events import ProcessDiff, ProcessesUnavailable
from envdeck.backend.processes.cgroups import container_id_from_cgroup, shim_container_id
from envdeck.backend.processes.guest import (
    GuestProcessSource,
    GuestWalkError,
    parse_guest_walk,
)

WALK = (Path(__file__).parent / "fixtures" / "proc" / "guest-walk.txt").read_text()


def test_parse_recorded_walk():
    snap = parse_guest_walk(WALK, "dev")
    rows = {r["pid"]: r for r in snap.rows()}
    assert set(rows) == {1, 5598, 5600}
    assert rows[1]["user"] == "root" and rows[1]["exe"] is None  # link unreadable: no target
    assert rows[5600]["ppid"] == 5598
    emu = rows[5600]["emulated"]
    assert emu["arch"] == "aarch64" and emu["arch_source"] == "interpreter"
    assert emu["argv"] == ["/opt/envdeck-test/arm64/busybox", "sleep", "22"]
    assert rows[5600]["rss_bytes"] > 0 and rows[5600]["start_time"] > 1.7e9
    assert snap.summary()["emulated"] == 1


def test_cpu_percent_from_guest_uptime_between_walks():
    first = parse_guest_walk(WALK, "dev")
    # The same walk 2 s later with 50 more ticks of CPU for pid 5598.
    up = WALK.split("==> /proc/uptime <==\n", 1)[1].split()[0]
    later = WALK.replace(
        f"==> /proc/uptime <==\n{up}", f"==> /proc/uptime <==\n{float(up) + 2:.2f}"
    )
    stat = next(line for line in WALK.splitlines() if line.startswith("5598 (bash)"))
    fields = stat.split()
    fields[13] = str(int(fields[13]) + 50)
    later = later.replace(stat, " ".join(fields))
    second = parse_guest_walk(later, "dev", previous=first)
    assert second.procs[5598].cpu_percent == pytest.approx(25.0, abs=0.5)
    assert second.procs[5600].cpu_percent == 0.0


def test_garbage_is_an_error_not_an_empty_tree():
    with pytest.raises(GuestWalkError):
        parse_guest_walk("sh: head: not found\n")


def test_cgroup_and_shim_ids():
    cid = "a" * 64
    assert container_id_from_cgroup(f"0::/system.slice/docker-{cid}.scope\n") == cid
    assert container_id_from_cgroup(f"12:memory:/docker/{cid}\n") == cid
    assert (
        container_id_from_cgroup("4:memory:/process_api/86a59be269c1cc37c52ddaba2d7f2271\n") is None
    )
    assert (
        shim_container_id(["/usr/bin/containerd-shim-runc-v2", "-namespace", "moby", "-id", cid])
        == cid
    )
    assert shim_container_id(["/usr/bin/containerd", "-id", cid]) is None


async def test_source_reports_unavailable_once_then_full_diff_on_recovery():
    calls = {"n": 0}

    async def run_command(script: str) -> str:
        calls["n"] += 1
        if calls["n"] in (2, 3):
            raise ConnectionResetError("ssh connection lost")
        return WALK

    events: list = []
    source = GuestProcessSource("dev", run_command, interval=0.01)
    task = asyncio.create_task(source.run(events.append))
    while calls["n"] < 5:
        await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    kinds = [(type(e).__name__, getattr(e, "full", None)) for e in events[:4]]
    assert kinds == [
        ("ProcessDiff", True),
        ("ProcessesUnavailable", None),
        ("ProcessDiff", True),
        ("ProcessDiff", False),
    ]
    assert isinstance(events[1], ProcessesUnavailable) and "ssh" in events[1].reason
    assert isinstance(events[0], ProcessDiff) and events[0].host == "dev"


@given(st.lists(st.text(max_size=120), min_size=6, max_size=6))
@example(["²", "x y", "btime x", "a:b:²", "9 (x) S", "\0"])
@example(["4096", "1.0 2.0", "btime", "root:x:0", "9 (x) S 1 1 1 0 -1 0", ""])
def test_any_walk_output_parses_or_is_rejected_never_crashes(noise):
    sections = ["/proc/uptime", "/proc/stat", "/etc/passwd", "/proc/9/stat", "/proc/9/cmdline"]
    heads = "".join(
        f"==> {name} <==\n{text}\n" for name, text in zip(sections, noise[1:], strict=True)
    )
    text = "@@envdeck-walk 1\n@@pagesize " + noise[0] + "\n" + noise[0] + "\n@@heads\n" + heads
    try:
        snap = parse_guest_walk(text)
    except GuestWalkError:
        return
    for proc in snap.procs.values():
        assert proc.row()["pid"] == proc.pid
