"""The dashboard over the docker VM in a real terminal (tmux), as a person sees it (issue #12):
an arm64 container run through the instance's docker context shows up under ``instance:dev`` in
the containers pane, flagged emulated, and the process pane on that instance shows its process
with the ``aarch64`` badge.

On the session's shared docker VM (tests/docker_vm_fixture.py).
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from tests.conftest import require_tool
from tests.docker_vm_fixture import DockerVM, docker
from tests.e2e.test_tui_tmux import Tmux, envdeck_command

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

CTX = ("--context", "envdeck-dev")


def line_with(screen: str, *texts: str) -> str | None:
    """The first screen line holding every one of ``texts``."""
    return next((line for line in screen.splitlines() if all(t in line for t in texts)), None)


def _group(line: str) -> bool:
    """An endpoint's header row in the containers pane ("host", "instance:NAME", ...)."""
    cells = line.strip("│ ").split()
    return bool(cells) and (cells[0] == "host" or cells[0].startswith(("instance:", "context:")))


def test_an_arm64_container_in_the_docker_vm_on_the_dashboard(
    docker_vm: DockerVM, tmp_path: Path
) -> None:
    require_tool("tmux", "docker")
    _, arm64 = docker_vm.images
    env = {**os.environ, "TERM": "xterm-256color", "ENVDECK_CONFIG": str(tmp_path / "config")}
    tmux = Tmux(f"{envdeck_command()}; echo DASHBOARD-EXITED $?; sleep 30", env)
    try:
        tmux.wait_for("instance:dev", timeout=60)
        tmux.keys("2")
        tmux.wait_for("native amd64", timeout=30)  # the instance's endpoint is reachable
        docker(*CTX, "run", "-d", "--platform", "linux/arm64", "--name", "armsleep", arm64,
               "sleep", "2112")  # fmt: skip
        screen = tmux.wait_for("armsleep", timeout=15)
        lines = screen.splitlines()
        row = line_with(screen, "armsleep")
        assert row is not None and "linux/arm64 emulated" in row, screen
        groups = [line for line in lines[: lines.index(row)] if _group(line)]
        assert groups and "instance:dev" in groups[-1], screen  # listed under the instance

        # The instances pane (dev selected), then the process pane: it follows the selected
        # instance's guest ('h' cycles the hosts); emulated processes only.
        tmux.keys("1", "4", "e")
        deadline = time.monotonic() + 60
        while (found := line_with(tmux.screen(), "sleep 2112", "aarch64")) is None:
            if time.monotonic() > deadline:
                pytest.fail(f"no aarch64 'sleep 2112' in the guest tree:\n{tmux.screen()}")
            if "dev" not in (line_with(tmux.screen(), "[4] Processes") or ""):
                tmux.keys("h")  # (the guest's first walk had not arrived yet)
            time.sleep(0.5)
        assert "[armsleep]" in found, found  # the container's name on its process
        tmux.keys("q")
        tmux.wait_for("DASHBOARD-EXITED 0")
    finally:
        tmux.kill()
