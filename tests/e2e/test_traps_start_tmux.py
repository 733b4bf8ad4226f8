"""`envdeck start` in a real terminal (tmux), as a person sees it (issue #16 item 18): the stage in
progress is one live line that its `✓` line replaces — no `… stage` lines are left behind."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.conftest import require_tool
from tests.e2e.test_tui_tmux import Tmux, envdeck_command
from tests.integration.instance_helpers import envdeck, kill_everything

pytestmark = pytest.mark.e2e


def test_start_replaces_running_stages_with_their_checkmarks(envdeck_home: Path):
    require_tool("tmux", "qemu-system-x86_64", "qemu-img")
    env = {**os.environ, "TERM": "xterm-256color"}
    try:
        envdeck("create", "live", check=True, timeout=900)
        tmux = Tmux(f"{envdeck_command('start', 'live')}; echo START-EXITED $?; sleep 30", env)
        try:
            screen = tmux.wait_for("START-EXITED", timeout=300)
        finally:
            tmux.kill()
        assert "START-EXITED 0" in screen and "live is ready" in screen, screen
        lines = screen.splitlines()
        assert any(line.lstrip().startswith("✓ ready") for line in lines), screen
        assert not [line for line in lines if line.lstrip().startswith("…")], screen
    finally:
        envdeck("stop", "live", timeout=120)
        kill_everything(envdeck_home)
