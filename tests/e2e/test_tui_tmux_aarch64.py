"""The card's scene in a real terminal (tmux): an aarch64 tiny guest on this x86_64 host, listed
as emulated, whose process pane shows an x86_64 busybox (and its child) run through
qemu-x86_64-static with the x86_64 badge."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from tests.conftest import require_tool
from tests.e2e.test_tui_tmux import Tmux, envdeck_command

pytestmark = [pytest.mark.e2e, pytest.mark.integration]


def test_x86_64_program_in_an_aarch64_guest_on_the_dashboard(envdeck_home: Path, tmp_path: Path):
    from tests.integration.instance_helpers import envdeck, kill_everything

    require_tool("tmux", "qemu-system-aarch64", "ssh")
    env = {**os.environ, "TERM": "xterm-256color", "ENVDECK_CONFIG": str(tmp_path / "config")}
    try:
        envdeck("create", "a1", "--arch", "aarch64", check=True, timeout=900)
        envdeck("start", "a1", check=True, timeout=600)
        envdeck("copy", "/bin/busybox", "a1:/tmp/busybox", check=True)
        run = "/tmp/busybox sh -c '/tmp/busybox sleep 2001 & /tmp/busybox sleep 2002'"
        envdeck("exec", "a1", "--", "sh", "-c", f"{run} </dev/null >/dev/null 2>&1 &", check=True)
        tmux = Tmux(f"{envdeck_command()}; echo DASHBOARD-EXITED $?; sleep 30", env)
        try:
            screen = tmux.wait_for("tcg emulated", timeout=60)
            assert "aarch64" in screen
            tmux.keys("1", "4", "e")  # the process pane, emulated only
            deadline = time.monotonic() + 60
            while "Processes  a1" not in tmux.screen() and time.monotonic() < deadline:
                tmux.keys("h")  # host -> a1, once the guest's first process walk has come
                time.sleep(1)
            screen = tmux.wait_for("/tmp/busybox sleep 2001", timeout=60)
            screen = tmux.wait_for("/tmp/busybox sleep 2002", timeout=30)
            rows = [line for line in screen.splitlines() if "/tmp/busybox sleep 200" in line]
            assert len(rows) == 2 and all("x86_64" in row for row in rows), screen
            tmux.keys("q")
            tmux.wait_for("DASHBOARD-EXITED 0")
        finally:
            tmux.kill()
    finally:
        envdeck("stop", "a1", timeout=120)
        kill_everything(envdeck_home)
