"""Issue #16 items 4 and 18 on the real host dockerd, through the CLI: `container stop` says
`stopping NAME…` at once (Docker then waits its timeout), and `container shell` takes piped
input as `envdeck shell` does."""

from __future__ import annotations

import contextlib
import subprocess
import sys
import time
import uuid

import docker
import pytest

from tests.integration.docker_images import AMD64, docker_client_or_skip

pytestmark = pytest.mark.integration
CLI = [sys.executable, "-m", "envdeck.backend.cli.main"]


@pytest.fixture
def container():
    """A running container whose PID 1 ignores SIGTERM (Docker's stop waits its timeout)."""
    client = docker_client_or_skip()
    name = f"envdeck-trap-{uuid.uuid4().hex[:8]}"
    client.containers.run(
        AMD64,
        ["sh", "-c", "trap '' TERM; while :; do sleep 0.2; done"],
        name=name,
        detach=True,
        network_mode="none",
    )
    yield name
    with contextlib.suppress(docker.errors.NotFound):
        client.api.remove_container(name, force=True)


def test_container_stop_says_stopping_at_once(container: str):
    t0 = time.monotonic()
    proc = subprocess.Popen(
        [*CLI, "container", "stop", container, "--time", "4"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    first = proc.stdout.readline()
    said_after = time.monotonic() - t0
    rest, errors = proc.communicate(timeout=60)
    assert first.strip() == f"stopping {container}…"
    assert said_after < 3.5, said_after  # before Docker's 4 s wait ran out
    assert proc.returncode == 0 and rest.strip(), (rest, errors)


def test_container_shell_takes_piped_input(container: str):
    done = subprocess.run(
        [*CLI, "container", "shell", container],
        input="echo piped-$((6*7))\n",
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert "not a TTY" not in done.stderr
    assert (done.returncode, done.stdout.strip()) == (0, "piped-42"), done.stderr
