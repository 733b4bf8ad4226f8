"""Container actions, logs, shell, stats and the CLI against the real host dockerd, with a true
linux/arm64 container running under qemu-aarch64 (binfmt_misc)."""

from __future__ import annotations

import contextlib
import json
import os
import pty
import re
import selectors
import subprocess
import sys
import threading
import time
import uuid

import docker
import pytest

from envdeck.backend.containers import source as containers
from envdeck.backend.errors import EnvdeckError, NotFound
from tests.conftest import require
from tests.integration.docker_images import AMD64, ARM64, docker_client_or_skip, ensure_binfmt

pytestmark = pytest.mark.integration
CLI = [sys.executable, "-m", "envdeck.backend.cli.main"]
# PID 1 ignores SIGTERM unless it traps it: stop quickly.
LOOP = [
    "sh",
    "-c",
    "trap 'exit 0' TERM; i=0; while :; do i=$((i+1)); echo line-$i; sleep 0.2; done",
]


@pytest.fixture(scope="module")
def client() -> docker.DockerClient:
    return docker_client_or_skip()


@pytest.fixture
def run(client: docker.DockerClient):
    """Start containers with unique names; all are removed afterwards."""
    made: list[str] = []

    def start(image: str = AMD64, command: list[str] | None = None, **kwargs) -> str:
        name = f"envdeck-act-{uuid.uuid4().hex[:8]}"
        made.append(name)
        client.containers.run(
            image, command or LOOP, name=name, detach=True, network_mode="none", **kwargs
        )
        return name

    yield start
    for name in made:
        with contextlib.suppress(docker.errors.NotFound):
            client.api.remove_container(name, force=True)


def envdeck(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=timeout)


def _state(client: docker.DockerClient, name: str) -> str:
    return client.api.inspect_container(name)["State"]["Status"]


def test_arm64_image_really_runs_emulated(client, run) -> None:
    require(ensure_binfmt(), "binfmt_misc with qemu-aarch64 registered")
    out = subprocess.run(
        ["docker", "run", "--rm", "--network", "none", ARM64, "uname", "-m"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.stdout.strip() == "aarch64", out.stderr
    arm, amd = run(ARM64), run(AMD64)
    rows = {r.name: r for r in containers.list_containers("host", all=False)}
    assert (rows[arm].platform, rows[arm].emulated) == ("linux/arm64", True)
    assert (rows[amd].platform, rows[amd].emulated) == ("linux/amd64", False)
    assert rows[arm].state == "running"

    listed = {
        r["name"]: r
        for r in json.loads(envdeck("containers", "--endpoint", "host", "--json").stdout)
    }
    assert listed[arm]["platform"] == "linux/arm64" and listed[arm]["emulated"] is True
    assert listed[amd]["emulated"] is False
    assert set(listed[arm]) >= {
        "endpoint",
        "id",
        "name",
        "image",
        "state",
        "status",
        "ports",
        "platform",
        "emulated",
    }


async def test_every_action(client, run) -> None:
    name = run()
    act = containers.container_action
    assert await act("host", name, "pause") == f"paused {name}"
    assert _state(client, name) == "paused"
    assert await act("host", name, "pause") == f"{name} is already paused"
    assert await act("host", name, "unpause") == f"unpaused {name}"
    assert _state(client, name) == "running"
    with pytest.raises(EnvdeckError, match="not paused"):
        await act("host", name, "unpause")
    started = client.api.inspect_container(name)["State"]["StartedAt"]
    assert await act("host", name, "restart", stop_timeout=2) == f"restarted {name}"
    assert client.api.inspect_container(name)["State"]["StartedAt"] != started
    with pytest.raises(EnvdeckError, match="is running") as exc:
        await act("host", name, "remove")
    assert "--force" in (exc.value.hint or "")
    assert await act("host", name, "stop", stop_timeout=2) == f"stopped {name}"
    assert _state(client, name) == "exited"
    assert await act("host", name, "stop") == f"{name} is not running"
    with pytest.raises(EnvdeckError, match="not running"):
        await act("host", name, "pause")
    assert await act("host", name, "start") == f"started {name}"
    assert _state(client, name) == "running"
    assert await act("host", name, "start") == f"{name} is already running"
    assert await act("host", name, "remove", force=True) == f"removed {name} (was running)"
    with pytest.raises(docker.errors.NotFound):
        client.api.inspect_container(name)


async def test_unknown_container_and_action(client) -> None:
    missing = f"envdeck-none-{uuid.uuid4().hex[:8]}"
    with pytest.raises(NotFound, match=missing):
        await containers.container_action("host", missing, "stop")
    with pytest.raises(EnvdeckError, match="unknown container action"):
        await containers.container_action("host", missing, "explode")
    result = envdeck("container", "stop", missing)
    assert result.returncode == 2
    assert f"no container '{missing}'" in result.stderr
    for argv in (
        ["container", "logs", missing],
        ["container", "shell", missing],
        ["container", "stats", missing],
    ):
        assert envdeck(*argv).returncode == 2


def test_remove_force_needs_confirmation_on_the_cli(client, run) -> None:
    name = run()
    refused = envdeck("container", "remove", "--force", name)  # stdin is not a tty
    assert refused.returncode == 2 and "--yes" in refused.stderr
    assert _state(client, name) == "running"
    done = envdeck("container", "rm", "--force", "--yes", name)
    assert done.returncode == 0 and f"removed {name}" in done.stdout


def test_logs_tail_timestamps_and_follow(client, run) -> None:
    name = run()
    time.sleep(1.5)
    tail = list(containers.logs("host", name, tail=2))
    assert len(tail) == 2 and all(re.fullmatch(r"line-\d+", line) for line in tail)
    stamped = list(containers.logs("host", name, tail=1, timestamps=True))
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT[\d:.]+Z line-\d+", stamped[0])

    stream = containers.logs("host", name, tail=0, follow=True)
    got: list[str] = []
    reader = threading.Thread(target=lambda: got.extend(stream), daemon=True)
    reader.start()
    deadline = time.monotonic() + 10
    while len(got) < 3 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(got) >= 3, got
    numbers = [int(line.split("-")[1]) for line in got[:3]]
    assert numbers == sorted(numbers) and numbers[2] - numbers[0] == 2  # new, consecutive lines
    stream.close()  # from another thread: the follow ends
    reader.join(5)
    assert not reader.is_alive()

    cli = subprocess.Popen(
        [*CLI, "container", "logs", "-f", "--tail", "1", name], stdout=subprocess.PIPE, text=True
    )
    try:
        lines = [cli.stdout.readline().strip() for _ in range(3)]  # type: ignore[union-attr]
    finally:
        cli.terminate()
        cli.wait(10)
    assert all(re.fullmatch(r"line-\d+", line) for line in lines), lines


def test_logs_of_a_container_without_readable_logs(client, run) -> None:
    name = run(log_config={"type": "none"})
    with pytest.raises(EnvdeckError, match="logging driver"):
        list(containers.logs("host", name))
    result = envdeck("container", "logs", name)
    assert result.returncode == 1 and "logging driver" in result.stderr


def _pty_session(
    argv: list[str], inputs: list[bytes], expect: bytes, timeout: float = 30
) -> tuple[bytes, int]:
    """Run ``argv`` on a pseudo-terminal, type ``inputs``; return (output, exit status)."""
    pid, fd = pty.fork()
    if pid == 0:  # child
        os.execvp(argv[0], argv)
    out = b""
    deadline = time.monotonic() + timeout
    pending = list(inputs)
    sel = selectors.DefaultSelector()  # epoll: no 1024-descriptor ceiling as with select()
    sel.register(fd, selectors.EVENT_READ)
    try:
        while time.monotonic() < deadline:
            if sel.select(0.2):
                try:
                    chunk = os.read(fd, 4096)
                except OSError:
                    break
                if not chunk:
                    break
                out += chunk
            if pending and (b"# " in out or b"$ " in out):
                os.write(fd, pending.pop(0))
                out += b"\n<sent>\n"
        _, status = os.waitpid(pid, 0)
    finally:
        sel.close()
        os.close(fd)
    assert expect in out, out.decode(errors="replace")
    return out, os.waitstatus_to_exitcode(status)


def test_shell_through_a_pty(client, run) -> None:
    require(ensure_binfmt(), "binfmt_misc with qemu-aarch64 registered")
    name = run(ARM64)
    argv = containers.shell_argv("host", name)
    assert argv[:3] == ["docker", "-H", "unix:///var/run/docker.sock"]
    assert argv[3:5] == ["exec", "-it"] and argv[-1] == "sh"
    out, code = _pty_session(
        [*CLI, "container", "shell", name],
        [b"tty; echo x$((6*7))y-$(uname -m)\r", b"exit 3\r"],
        b"x42y-aarch64",
    )
    assert b"/dev/pts/" in out  # a real terminal inside the container
    assert code == 3
    # A command instead of sh.
    out, code = _pty_session(
        [*CLI, "container", "shell", name, "--", "uname", "-m"], [], b"aarch64"
    )
    assert code == 0


def test_shell_refuses_a_stopped_container(client, run) -> None:
    name = run()
    client.api.stop(name, timeout=2)
    with pytest.raises(EnvdeckError, match="exited"):
        containers.shell_argv("host", name)


def test_stats_on_demand(client, run) -> None:
    busy = run(command=["sh", "-c", "trap 'exit 0' TERM; while :; do :; done"])
    data = containers.stats("host", busy)
    assert data["name"] == busy and data["state"] == "running"
    assert data["cpu_percent"] > 10, data  # a busy loop: well above idle
    assert data["memory_bytes"] and data["memory_bytes"] > 0
    assert data["pids"] and data["pids"] >= 1
    idle = run(command=["sleep", "600"])
    assert containers.stats("host", idle)["cpu_percent"] < data["cpu_percent"]
    shown = envdeck("container", "stats", "--json", busy)
    assert shown.returncode == 0 and json.loads(shown.stdout)["id"].startswith(
        client.api.inspect_container(busy)["Id"][:12]
    )


def test_cli_lists_running_and_all(client, run) -> None:
    up = run()
    down = run()
    client.api.stop(down, timeout=2)
    running = {r["name"] for r in json.loads(envdeck("containers", "--json").stdout)}
    everything = {r["name"] for r in json.loads(envdeck("containers", "--all", "--json").stdout)}
    assert up in running and down not in running
    assert {up, down} <= everything
    table = envdeck("containers", "--endpoint", "host")
    assert table.returncode == 0 and up in table.stdout and "PLATFORM" in table.stdout


def test_docker_context_endpoint(client, run, tmp_path, monkeypatch) -> None:
    """A context made by the docker CLI itself is found, listed, and used for the shell."""
    link = tmp_path / "ctx.sock"  # another path to the host daemon: not folded into "host"
    link.symlink_to("/var/run/docker.sock")
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "cfg"))
    made = subprocess.run(
        ["docker", "context", "create", "envdeck-ctx", "--docker", f"host=unix://{link}"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert made.returncode == 0, made.stderr
    name = run()
    listed = json.loads(envdeck("containers", "--endpoint", "context:envdeck-ctx", "--json").stdout)
    assert {r["endpoint"] for r in listed} == {"context:envdeck-ctx"}
    assert name in {r["name"] for r in listed}
    argv = containers.shell_argv("envdeck-ctx", name, ["echo", "via-context"])
    assert argv[:3] == ["docker", "--context", "envdeck-ctx"]
    _, code = _pty_session(argv, [], b"via-context")
    assert code == 0


def test_cli_unreachable_endpoint(tmp_path) -> None:
    result = envdeck("containers", "--endpoint", f"unix://{tmp_path}/none.sock")
    assert result.returncode == 1
    assert "unreachable" in result.stderr and "none.sock" in result.stderr
