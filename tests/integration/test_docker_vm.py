"""The docker template end to end (issue #12): a Debian guest built from Debian packages, booted
under TCG, with dockerd ready at "ready", its socket forwarded to the instance dir, the docker
context ``envdeck-dev``, the instance's containers listed and followed live, a published port
answering on the host, an arm64 container run through the guest's qemu-user-static and seen in
the guest process tree, and delete leaving nothing in the docker config.

Images reach the guest by ``docker save`` on the host and ``docker load`` through the context
(the busybox test images of docker_images.py; no registry). The docker image is built once per
builder version into the shared test cache, about 100 s here; the boot to ready takes about 85 s
under TCG. Both are printed. The end-to-end test runs on the session's shared docker VM
(tests/docker_vm_fixture.py), last among its users, as it stops and deletes it.
"""

from __future__ import annotations

import asyncio
import json
import socket
import time
import urllib.request
from pathlib import Path

import pytest

from envdeck.backend.containers import contexts
from envdeck.backend.errors import EnvdeckError
from tests.conftest import require_tool
from tests.docker_vm_fixture import DockerVM, docker, require_docker_vm_tools
from tests.integration.instance_helpers import envdeck, kill_everything, list_json

pytestmark = pytest.mark.integration


@pytest.fixture
def docker_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private Docker CLI config dir (the user's ~/.docker is never touched)."""
    directory = tmp_path / "docker-config"
    directory.mkdir()
    monkeypatch.setenv("DOCKER_CONFIG", str(directory))
    return directory


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_a_docker_context_envdeck_did_not_make_is_never_overwritten(
    docker_config: Path, tmp_path: Path
) -> None:
    require_tool("docker")
    instance_dir = tmp_path / "home" / "instances" / "dev"
    instance_dir.mkdir(parents=True)
    docker("context", "create", "envdeck-dev", "--docker", "host=unix:///somewhere/else.sock")
    meta = next((docker_config / "contexts" / "meta").glob("*/meta.json"))
    before = meta.read_bytes()
    with pytest.raises(contexts.ContextConflict) as caught:
        contexts.ensure("dev", instance_dir, instance_dir / "docker.sock")
    assert "exists and envdeck did not make it" in caught.value.message
    assert "docker context rm envdeck-dev" in str(caught.value.hint)
    assert meta.read_bytes() == before
    assert contexts.remove("dev", instance_dir) is False  # delete leaves it too
    assert meta.read_bytes() == before

    # Ours, made for an envdeck home that no longer exists: stale, replaced.
    docker("context", "rm", "envdeck-dev")
    gone = tmp_path / "old-home" / "instances" / "dev"
    gone.mkdir(parents=True)
    contexts.ensure("dev", gone, gone / "docker.sock")
    gone.rmdir()
    contexts.ensure("dev", instance_dir, instance_dir / "docker.sock")
    assert f"unix://{instance_dir}/docker.sock" in docker("context", "ls")


def test_an_unusable_docker_config_dir_is_a_clear_message(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "missing"))
    with pytest.raises(EnvdeckError, match="DOCKER_CONFIG is .*missing, which is not a directory"):
        contexts.ensure("dev", tmp_path, tmp_path / "docker.sock")
    assert not (tmp_path / "missing").exists()


async def _watch(endpoint: str, seen: list, stop: asyncio.Event) -> None:
    """Follow the endpoint with the containers feed until ``stop``."""
    from envdeck.backend.containers.source import ContainersSource

    task = asyncio.create_task(ContainersSource([endpoint], retry_max=0.5).run(seen.append))
    await stop.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def _until(predicate, timeout: float) -> float:
    """Seconds until ``predicate()`` holds; fails after ``timeout``."""
    start = time.monotonic()
    while not predicate():
        assert time.monotonic() - start < timeout, "not seen in time"
        await asyncio.sleep(0.05)
    return time.monotonic() - start


def test_dockerd_failing_makes_the_instance_degraded_with_its_reason(
    envdeck_home: Path, docker_config: Path, tmp_path: Path
) -> None:
    require_docker_vm_tools()
    spec = tmp_path / "broken.yaml"
    spec.write_text(
        "template: docker\nprovision:\n  - mode: system\n    script: |\n"
        "      echo '{not json' > /etc/docker/daemon.json\n"
        "      systemctl restart docker.service || true\n"
    )
    try:
        envdeck("create", "broken", "-f", str(spec), check=True, timeout=2400)
        started = envdeck("start", "broken", timeout=900)
        assert started.returncode == 1, started.stdout + started.stderr
        row = list_json()["broken"]
        assert row["state"] == "degraded"
        assert row["reason"].startswith("dockerd failed to start: ")
        assert "daemon.json" in row["reason"]  # dockerd's own words, not systemd's
        assert not list(docker_config.glob("contexts/meta/*/meta.json"))  # no context
    finally:
        envdeck("stop", "broken", timeout=180)
        kill_everything(envdeck_home)


def test_docker_instance_end_to_end(docker_vm_to_delete: DockerVM) -> None:
    vm = docker_vm_to_delete
    print(f"\ncreate (image build if not cached): {vm.create_s:.1f}s")
    print(f"start -> ready: {vm.start_s:.1f}s")
    started = vm.started
    assert "docker ready" in started.stderr and "docker --context envdeck-dev" in started.stderr
    assert list_json()["dev"]["state"] == "ready", vm.created.stdout
    sock = vm.instance_dir / "docker.sock"
    assert sock.is_socket() and sock.stat().st_mode & 0o777 == 0o600

    assert docker("--context", "envdeck-dev", "version", "--format", "{{.Server.Os}}") == "linux\n"
    amd64, arm64 = vm.images  # (loaded through the context when the VM was booted)
    seen: list = []

    async def scenario() -> None:
        stop = asyncio.Event()
        watcher = asyncio.create_task(_watch("instance:dev", seen, stop))
        try:
            await _live_containers(seen, amd64, arm64)
            await asyncio.to_thread(envdeck, "stop", "dev", "--timeout", "120", check=True)
            waited = await _until(
                lambda: any(
                    getattr(e, "reachable", None) is False and e.reason == "stopped" for e in seen
                ),
                30,
            )
            print(f"endpoint 'stopped' {waited:.1f}s after the stop returned")
        finally:
            stop.set()
            await watcher

    asyncio.run(scenario())

    deleted = envdeck("delete", "dev", check=True).stdout
    assert "its docker context envdeck-dev" in deleted
    assert "envdeck-dev" not in docker("context", "ls")
    assert not list((vm.docker_config / "contexts" / "meta").glob("*/meta.json"))
    assert not sock.exists() and not vm.instance_dir.exists()


async def _live_containers(seen: list, amd64: str, arm64: str) -> None:
    """Containers through the context: seen live, a published port, the arm64 processes."""
    ctx = ("--context", "envdeck-dev")
    await _until(lambda: any(getattr(e, "reachable", False) for e in seen), 30)
    arm = await asyncio.to_thread(
        docker, *ctx, "run", "-d", "--platform", "linux/arm64", "--name", "armsleep", arm64,
        "sleep", "600",
    )  # fmt: skip
    row_after = await _until(lambda: any(getattr(e, "name", "") == "armsleep" for e in seen), 10)
    print(f"container row {row_after * 1000:.0f} ms after 'docker run' returned")
    port = free_port()
    await asyncio.to_thread(
        docker, *ctx, "run", "-d", "--name", "web", "-p", f"{port}:80", amd64,
        "httpd", "-f", "-p", "80", "-h", "/etc",
    )  # fmt: skip
    answered = await _answered_after(port, 10)
    forwards = (await asyncio.to_thread(envdeck, "forwards", "dev")).stdout
    print(f"published port {port} answered on the host {answered:.2f}s after 'docker run'")
    assert answered < 3.0, forwards

    listed = await asyncio.to_thread(envdeck, "containers", "--json", check=True)
    rows = json.loads(listed.stdout)
    mine = {row["name"]: row for row in rows if row["endpoint"] == "instance:dev"}
    assert set(mine) >= {"armsleep", "web"}, listed.stdout + listed.stderr
    assert mine["armsleep"]["emulated"] and mine["armsleep"]["platform"] == "linux/arm64"
    assert arm.strip().startswith(mine["armsleep"]["id"][:12])

    binfmt = (await asyncio.to_thread(envdeck, "binfmt", "--instance", "dev", check=True)).stdout
    aarch64 = next(text for text in binfmt.splitlines() if text.startswith("qemu-aarch64"))
    assert "F" in aarch64.split()[3]

    rows = json.loads(
        (await asyncio.to_thread(envdeck, "ps", "--instance", "dev", "--json", check=True)).stdout
    )
    by_pid = {row["pid"]: row for row in rows}
    sleep = next(row for row in rows if row["container"] == "armsleep" and row["emulated"])
    assert sleep["emulated"]["arch"] == "aarch64"
    assert sleep["emulated"]["argv"][:2] == ["sleep", "600"]
    shim = by_pid[sleep["ppid"]]
    assert shim["cmdline"][0].endswith("containerd-shim-runc-v2")


async def _answered_after(port: int, timeout: float) -> float:
    """Seconds until http://127.0.0.1:PORT/passwd serves the container's file."""
    start = time.monotonic()
    while not await asyncio.to_thread(_answers, port):
        if time.monotonic() - start > timeout:
            forwards = (await asyncio.to_thread(envdeck, "forwards", "dev")).stdout
            raise AssertionError(f"127.0.0.1:{port} did not answer in {timeout}s:\n{forwards}")
        await asyncio.sleep(0.05)
    return time.monotonic() - start


def _answers(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/passwd", timeout=1) as response:
            return b"root:x:0:0" in response.read()
    except OSError:
        return False
