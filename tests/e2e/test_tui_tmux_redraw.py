"""The process pane redraws whole rows in a real terminal (issue #16 item 13): after ``M`` (sort
by memory) then ``h`` (the guest's view), no row keeps text from the host view, and a command
line with newlines (a guest's ``sh -c`` script) stays on its one row."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest

from envdeck.backend import events as ev
from tests.conftest import require_tool
from tests.e2e.synthetic import BASE_TS, _proc, events
from tests.e2e.test_tui_tmux import Tmux, envdeck_command

pytestmark = pytest.mark.e2e

SCRIPT = "exec 2>/dev/null\ncd / || exit 1\necho guest-script-line-3\n"


def guest_recording(path: Path) -> Path:
    """The synthetic session (40 extra host processes) and then a snapshot of tiny's guest."""
    guest = ev.ProcessDiff(
        host="tiny",
        full=True,
        added=[
            _proc(1, 0, ["init"], rss=1 << 20),
            _proc(61, 1, ["/usr/sbin/dropbear", "-F", "-R"], rss=3 << 20),
            _proc(70, 61, ["sh", "-c", SCRIPT], rss=2 << 20, cpu=3.0),
        ],
    )
    guest.ts = BASE_TS + 5.0
    with open(path, "w", encoding="utf-8") as fh:
        for t, event in [*events(extra_processes=40), (5.0, guest)]:
            fh.write(json.dumps({"t": t, **event.to_dict()}) + "\n")
    return path


def process_pane(screen: str) -> list[str]:
    """The process pane's lines (the right column, between its borders)."""
    lines = screen.splitlines()
    top = next(i for i, line in enumerate(lines) if "[4] Processes" in line)
    start = lines[top].index("╭─ [4]")
    out = []
    for line in lines[top + 1 :]:
        cell = line[start:]
        if cell.startswith("╰"):
            break
        out.append(cell)
    return out


def test_sort_by_memory_then_guest_view_redraws_every_row(tmp_path: Path):
    require_tool("tmux")
    recording = guest_recording(tmp_path / "guest.jsonl")
    env = {**os.environ, "TERM": "xterm-256color", "ENVDECK_CONFIG": str(tmp_path / "config")}
    replay = envdeck_command("replay", str(recording), "--speed", "0")
    tmux = Tmux(f"{replay}; echo DASHBOARD-EXITED $?; sleep 30", env)
    try:
        tmux.wait_for("2 emulated processes · 41 % CPU")
        tmux.keys("4", "M")
        host = tmux.wait_for("sort mem")
        assert "/usr/bin/dockerd" in host
        tmux.keys("h")
        screen = tmux.wait_for("tiny · 3 ·")
        rows = process_pane(screen)
        width = len(rows[0])
        for row in rows:
            assert len(row) == width and row.startswith("│") and row.endswith("│"), row
        body = "\n".join(rows)
        for host_only in ("dockerd", "containerd", "sleep 10", "hello-arm64", "qemu-system"):
            assert host_only not in body, host_only
        script = [r for r in rows if "sh -c exec" in r]
        assert len(script) == 1 and "\\n" in script[0]  # the newlines shown, on one row
        assert not any(r.strip("│ ").startswith("cd /") for r in rows)
        assert re.search(r"\b70 root\b", body)
        tmux.keys("q")
        tmux.wait_for("DASHBOARD-EXITED 0")
    finally:
        tmux.kill()
