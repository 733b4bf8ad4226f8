"""The dashboard in a real terminal (tmux), as a person sees it: send-keys, capture-pane."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import require_tool

pytestmark = pytest.mark.e2e


class Tmux:
    """One tmux server on a private socket, one session running ``command``."""

    def __init__(self, command: str, env: dict[str, str]) -> None:
        self.socket = f"envdeck-test-{os.getpid()}"
        self.env = env
        self.run("new-session", "-d", "-s", "t", "-x", "160", "-y", "48", command)

    def run(self, *args: str) -> str:
        return subprocess.run(
            ["tmux", "-L", self.socket, *args],
            env=self.env,
            check=True,
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout

    def keys(self, *keys: str) -> None:
        for key in keys:  # one at a time: Esc followed by a key would read as Alt-key
            self.run("send-keys", "-t", "t", key)
            time.sleep(0.3)

    def screen(self) -> str:
        return self.run("capture-pane", "-p", "-t", "t")

    def wait_for(self, text: str, timeout: float = 15.0) -> str:
        deadline = time.monotonic() + timeout
        while True:
            screen = self.screen()
            if text in screen:
                return screen
            if time.monotonic() > deadline:
                pytest.fail(f"{text!r} not on screen after {timeout}s:\n{screen}")
            time.sleep(0.2)

    def wait_gone(self, text: str, timeout: float = 15.0) -> str:
        deadline = time.monotonic() + timeout
        while True:
            screen = self.screen()
            if text not in screen:
                return screen
            if time.monotonic() > deadline:
                pytest.fail(f"{text!r} still on screen after {timeout}s:\n{screen}")
            time.sleep(0.2)

    def kill(self) -> None:
        subprocess.run(
            ["tmux", "-L", self.socket, "kill-server"], env=self.env, capture_output=True
        )


def envdeck_command(*args: str) -> str:
    return shlex.join([sys.executable, "-m", "envdeck.backend.cli.main", *args])


def test_replay_in_a_real_terminal(recording: Path, tmp_path: Path):
    require_tool("tmux")
    env = {**os.environ, "TERM": "xterm-256color", "ENVDECK_CONFIG": str(tmp_path / "config")}
    # After the dashboard exits, the shell prints a marker and keeps the pane for inspection.
    replay = envdeck_command("replay", str(recording), "--speed", "0")
    command = f"{replay}; echo DASHBOARD-EXITED $?; sleep 30"
    tmux = Tmux(command, env)
    try:
        tmux.wait_for("2 emulated processes · 41 % CPU")  # the last event of the replay
        screen = tmux.wait_for("synthetic kernel line 39")  # (the serial pane's next flush)
        for text in (
            "[1] Instances",
            "[2] Containers",
            "[3] Forwards",
            "[4] Processes",
            "[5] Serial",
            "tiny",
            "ready",
            "linux/arm64 emulated",
            "2 emulated processes · 41 % CPU",
            "aarch64  [arm-loop] sh -c while true",
            "synthetic kernel line 39",
            "REPLAY",
            "READ-ONLY",
        ):
            assert text in screen, text
        tmux.keys("4", "e")
        screen = tmux.wait_gone("qemu-system-x86_64")  # emulated only: native leaves are hidden
        assert "emulated only" in screen and "./hello-arm64 --loop" in screen
        tmux.keys("?")
        tmux.wait_for("Keys — Processes first")
        tmux.keys("Escape")
        tmux.keys("1", "d")  # a replay is read-only: delete does nothing (no question asked)
        time.sleep(1.0)
        screen = tmux.screen()
        assert "Delete instance tiny?" not in screen and "│ tiny " in screen
        tmux.keys("q")
        tmux.wait_for("DASHBOARD-EXITED 0")
    finally:
        tmux.kill()


@pytest.mark.integration
def test_shell_into_the_tiny_guest_and_back(envdeck_home: Path, tmp_path: Path):
    """E suspends the dashboard, opens the guest's shell over SSH, and `exit` comes back."""
    from tests.integration.instance_helpers import envdeck, kill_everything

    require_tool("tmux", "qemu-system-x86_64", "ssh")
    env = {**os.environ, "TERM": "xterm-256color", "ENVDECK_CONFIG": str(tmp_path / "config")}
    try:
        envdeck("create", "shelltest", check=True, timeout=900)
        envdeck("start", "shelltest", check=True, timeout=900)
        tmux = Tmux(f"{envdeck_command()}; echo DASHBOARD-EXITED $?; sleep 30", env)
        try:
            tmux.wait_for("shelltest", timeout=30)
            tmux.wait_for("ready", timeout=60)
            # The graphs (issue #15): QEMU's CPU as a sparkline with its percent in the row,
            # filled in by the live figures within a few seconds.
            graph = re.compile(r"│ shelltest .*[▁▂▃▄▅▆▇█]+ +\d+%")
            deadline = time.monotonic() + 20
            while not graph.search(screen := tmux.screen()):
                if time.monotonic() > deadline:
                    pytest.fail(f"no CPU sparkline in the instance's row:\n{screen}")
                time.sleep(0.5)
            tmux.keys("1", "E")
            tmux.run("send-keys", "-t", "t", "echo guest-$((6*7)) $(uname -n)", "Enter")
            screen = tmux.wait_for("guest-42", timeout=60)
            assert (
                "[1] Instances" not in screen
            )  # the dashboard is suspended, the shell has the terminal
            tmux.run("send-keys", "-t", "t", "exit", "Enter")
            tmux.wait_for("[1] Instances", timeout=30)  # and back
            tmux.keys("q")
            tmux.wait_for("DASHBOARD-EXITED 0")
        finally:
            tmux.kill()
    finally:
        envdeck("stop", "shelltest", timeout=120)
        kill_everything(envdeck_home)
