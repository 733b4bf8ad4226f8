"""The dashboard as a person starts it, in tmux (issue #14 items 2 and 5), against anchors in the
same run: first frame and first frame with data vs a bare Textual app (Header + a 200-row
DataTable); idle CPU with one instance running and the serial pane following it vs htop.

Run: ``pytest -s tests/benchmarks/test_bench_first_paint.py``.
"""

from __future__ import annotations

import os
import re
import shutil
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.benchmarks.test_bench_processes import (  # noqa: F401 - fixture
    EXTRA,
    WINDOW,
    cpu_seconds,
    extra_processes,
)
from tests.benchmarks.test_bench_tui import report
from tests.conftest import require, require_tool

pytestmark = pytest.mark.benchmark

BARE_APP = """
from textual.app import App
from textual.widgets import DataTable, Header

class Bare(App):
    def compose(self):
        yield Header()
        yield DataTable()

    def on_mount(self):
        table = self.query_one(DataTable)
        table.add_columns("PID", "COMMAND")
        table.add_rows([(str(i), f"bare-row-{i}") for i in range(200)])

Bare().run()
"""
DASHBOARD = [sys.executable, "-m", "envdeck.backend.cli.main"]
RUNS = 3


class Tmux:
    """A private tmux server; sessions are ended with it."""

    def __init__(self, env: dict[str, str]) -> None:
        self.tmux = shutil.which("tmux") or "tmux"
        self.socket = f"envdeck-bench-paint-{uuid.uuid4().hex[:8]}"
        self.env = env

    def run(self, *args: str) -> str:
        return subprocess.run(
            [self.tmux, "-L", self.socket, *args],
            capture_output=True,
            text=True,
            check=True,
            env=self.env,
        ).stdout

    def start(self, name: str, argv: list[str]) -> int:
        """A 160x48 session running ``argv``; the pid of its process."""
        self.run("new-session", "-d", "-s", name, "-x", "160", "-y", "48", *argv)
        return int(self.run("list-panes", "-t", name, "-F", "#{pane_pid}").split()[0])

    def screen(self, name: str) -> str:
        try:
            return self.run("capture-pane", "-p", "-t", name)
        except subprocess.CalledProcessError:
            return ""

    def kill(self) -> None:
        subprocess.run([self.tmux, "-L", self.socket, "kill-server"], check=False, env=self.env)


@contextmanager
def tmux_server(tmp_path: Path) -> Iterator[Tmux]:
    env = {
        **os.environ,
        "ENVDECK_HOME": str(tmp_path / "home"),
        "ENVDECK_CONFIG": str(tmp_path / "cfg"),
        "TERM": "xterm-256color",
    }
    server = Tmux(env)
    try:
        server.start("keep", ["sleep", "3600"])  # the server outlives each measured session
        yield server
    finally:
        server.kill()


def time_until(
    server: Tmux, argv: list[str], marks: dict[str, Callable[[str], bool]], timeout: float = 30
) -> dict[str, float]:
    """Seconds from launching ``argv`` in a fresh session until each mark holds on screen."""
    name = f"s{uuid.uuid4().hex[:6]}"
    start = time.monotonic()
    server.start(name, argv)
    found: dict[str, float] = {}
    while len(found) < len(marks):
        text = server.screen(name)
        now = time.monotonic() - start
        for mark, seen in marks.items():
            if mark not in found and seen(text):
                found[mark] = now
        if now > timeout:
            raise AssertionError(f"not on screen after {timeout}s: {set(marks) - set(found)}")
        time.sleep(0.005)
    server.run("kill-session", "-t", name)
    return found


def fresh_bytecode() -> tuple[int, int]:
    """(envdeck modules whose bytecode matches their source, all envdeck modules): a start
    compiles the others again when PYTHONDONTWRITEBYTECODE is set (Textual, the anchor's
    library, is installed with its bytecode)."""
    import importlib.util

    root = Path(__file__).resolve().parents[2]
    fresh = total = 0
    for source in [p for part in ("backend", "tui", "themes") for p in (root / part).rglob("*.py")]:
        total += 1
        try:
            header = Path(importlib.util.cache_from_source(str(source))).read_bytes()[:16]
        except OSError:
            continue
        stat = source.stat()
        fresh += header[4:8] == b"\0\0\0\0" and header[8:16] == (
            (int(stat.st_mtime) & 0xFFFFFFFF).to_bytes(4, "little")
            + (stat.st_size & 0xFFFFFFFF).to_bytes(4, "little")
        )
    return fresh, total


def test_first_frame_and_first_data_vs_a_bare_textual_app(tmp_path: Path):
    require_tool("tmux")
    init_row = re.compile(r"│\s+1 \S+\s+\d+\.\d")  # PID 1's row: every host has one
    bare_marks = {"frame": lambda s: "bare-row-5" in s}
    dash_marks = {
        "frame": lambda s: "Instances" in s and "Processes" in s,
        "data": lambda s: init_row.search(s) is not None,
    }
    bare: list[float] = []
    frame: list[float] = []
    data: list[float] = []
    with tmux_server(tmp_path) as server:
        for _ in range(RUNS):  # interleaved, so a busy moment hits both
            bare.append(time_until(server, [sys.executable, "-c", BARE_APP], bare_marks)["frame"])
            seen = time_until(server, DASHBOARD, dash_marks)
            frame.append(seen["frame"])
            data.append(seen["data"])
    anchor = statistics.median(bare) * 1000
    report(
        "tmux: dashboard first frame vs a bare Textual app", statistics.median(frame) * 1000, anchor
    )
    report(
        "tmux: dashboard first frame with data (a process row) vs a bare Textual app (goal <= 1.5)",
        statistics.median(data) * 1000,
        anchor,
    )
    ratios = " ".join(f"{d / b:.2f}" for d, b in zip(data, bare, strict=True))
    print(f"[bench] tmux: first frame with data / bare app, each interleaved round: {ratios}")
    gaps = sorted((d - f) * 1000 for d, f in zip(data, frame, strict=True))
    fresh, total = fresh_bytecode()
    print(
        f"[bench] tmux: first frame -> first process row: median {statistics.median(gaps):.0f} ms"
        f" (0 when the rows are in the first frame); envdeck modules with fresh bytecode:"
        f" {fresh}/{total}"
    )


def test_idle_cpu_with_an_instance_running_and_the_serial_pane_following(
    extra_processes: int,  # noqa: F811 - fixture
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
):
    """Issue #14 item 5, second half: the same 2,000 extra processes as the idle benchmark,
    plus one tiny instance running and the serial pane shown."""
    require_tool("tmux", "htop", "qemu-system-x86_64")
    require(extra_processes >= EXTRA, f"{EXTRA} extra processes (got {extra_processes})")
    from tests.integration.instance_helpers import envdeck, kill_everything

    home = tmp_path / "home"
    monkeypatch.setenv("ENVDECK_HOME", str(home))
    cache = os.environ.get("ENVDECK_CACHE") or str(Path.home() / ".cache" / "envdeck-test-cache")
    monkeypatch.setenv("ENVDECK_CACHE", cache)
    try:
        envdeck("create", "idle", check=True, timeout=900)
        envdeck("start", "idle", check=True, timeout=300)
        with tmux_server(tmp_path) as server:
            server.env["ENVDECK_CACHE"] = cache
            pids = {
                "dash": server.start("dash", DASHBOARD),
                "htop": server.start("htop", ["htop", "-d", "10"]),
            }
            deadline = time.monotonic() + 30
            while "idle" not in server.screen("dash") and time.monotonic() < deadline:
                time.sleep(0.1)
            server.run("send-keys", "-t", "dash", "5")  # the serial pane, following the log
            time.sleep(5)  # past start-up: imports, first snapshots, first paint
            start = {n: cpu_seconds(p) for n, p in pids.items()}
            t0 = time.monotonic()
            time.sleep(WINDOW)
            used = {n: cpu_seconds(p) - start[n] for n, p in pids.items()}
            elapsed = time.monotonic() - t0
            screen = server.screen("dash")
        assert "idle" in screen, screen
    finally:
        kill_everything(home)
    scale = 60.0 / elapsed
    report(
        f"dashboard CPU-s per minute, {extra_processes} extra processes, one instance running,"
        " serial pane following (goal <= 0.5)",
        used["dash"] * scale,
        used["htop"] * scale,
        unit="CPU-s/min",
    )
