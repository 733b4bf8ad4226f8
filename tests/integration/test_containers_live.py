"""ContainersSource against real daemons: live events, endpoint discovery, a daemon that stops
and comes back (a second dockerd this test starts, so the main one is untouched)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import docker
import pytest

from envdeck.backend.containers.endpoints import Endpoint, host_endpoint
from envdeck.backend.containers.source import ContainersSource
from envdeck.backend.events import ContainerInfo, ContainerRemoved, EndpointStatus, Event
from tests.integration.docker_images import AMD64, docker_client_or_skip, ensure_amd64

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def client() -> docker.DockerClient:
    return docker_client_or_skip()


@pytest.fixture
def names(client: docker.DockerClient):
    """Unique container names; every container made with one is removed afterwards."""
    made: list[str] = []

    def make(prefix: str = "envdeck-live") -> str:
        made.append(f"{prefix}-{uuid.uuid4().hex[:8]}")
        return made[-1]

    yield make
    for name in made:
        with contextlib.suppress(docker.errors.NotFound):
            client.api.remove_container(name, force=True)


class Collector:
    """Events of a running source, awaited by predicate."""

    def __init__(self) -> None:
        self.events: list[tuple[float, Event]] = []
        self._cond = asyncio.Condition()
        self._loop = asyncio.get_running_loop()

    def emit(self, event: Event) -> None:
        self.events.append((time.monotonic(), event))
        self._loop.create_task(self._notify())

    async def _notify(self) -> None:
        async with self._cond:
            self._cond.notify_all()

    async def wait(
        self, pred: Callable[[Event], bool], timeout: float, after: int = 0
    ) -> tuple[float, Event]:
        """The first event (index >= ``after``) matching ``pred``; fails after ``timeout``."""
        try:
            async with asyncio.timeout(timeout):
                return await self._wait(pred, after)
        except TimeoutError:
            got = "\n".join(f"  {e!r}" for _, e in self.events[after:]) or "  (nothing)"
            raise AssertionError(f"no matching event within {timeout}s; got:\n{got}") from None

    async def _wait(self, pred: Callable[[Event], bool], after: int) -> tuple[float, Event]:
        while True:
            for stamp, event in self.events[after:]:
                if pred(event):
                    return stamp, event
            async with self._cond:
                await self._cond.wait()


@pytest.fixture
async def running():
    """Start a source with a collector; cancelled at the end (no thread may outlive it)."""
    started: list[tuple[asyncio.Task, ContainersSource]] = []

    async def start(source: ContainersSource) -> Collector:
        collector = Collector()
        started.append((asyncio.create_task(source.run(collector.emit)), source))
        return collector

    yield start
    for task, _ in started:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    await asyncio.sleep(0.1)
    left = [t.name for t in threading.enumerate() if t.name.startswith("docker-events")]
    assert left == [], f"event threads left behind: {left}"


def _row(name: str, state: str | None = None) -> Callable[[Event], bool]:
    return lambda e: (
        isinstance(e, ContainerInfo) and e.name == name and (state is None or e.state == state)
    )


def _reachable(endpoint: str, value: bool) -> Callable[[Event], bool]:
    return lambda e: (
        isinstance(e, EndpointStatus) and e.endpoint == endpoint and e.reachable is value
    )


async def test_live_events_without_polling(client, names, running) -> None:
    source = ContainersSource([host_endpoint()])
    seen = await running(source)
    await seen.wait(_reachable("host", True), 10)
    watcher = source.watchers["host"]
    await asyncio.sleep(2)  # idle: nothing may be requested while nothing happens
    idle_requests = watcher.list_requests
    await asyncio.sleep(2)
    assert watcher.list_requests == idle_requests, "the source polls while idle"

    name = names()
    mark = len(seen.events)
    cid = (
        await asyncio.to_thread(client.api.create_container, AMD64, ["sleep", "600"], name=name)
    )["Id"]
    _, created = await seen.wait(_row(name, "created"), 5, mark)
    assert created.id == cid and created.platform == "linux/amd64" and not created.emulated

    for action, state in (
        ("start", "running"),
        ("pause", "paused"),
        ("unpause", "running"),
        ("stop", "exited"),
    ):
        mark = len(seen.events)
        t0 = time.monotonic()
        kwargs = {"timeout": 1} if action == "stop" else {}
        await asyncio.to_thread(getattr(client.api, action), cid, **kwargs)
        stamp, _ = await seen.wait(_row(name, state), 5, mark)
        print(f"{action}: row '{state}' {1000 * (stamp - t0):.0f} ms after the call began")

    mark = len(seen.events)
    await asyncio.to_thread(client.api.remove_container, cid)
    await seen.wait(lambda e: isinstance(e, ContainerRemoved) and e.id == cid, 5, mark)
    # One list for the snapshot, then only event-driven refreshes (a handful per action).
    assert watcher.list_requests <= idle_requests + 8


async def test_no_thread_or_connection_per_refresh(client, names, running) -> None:
    name = names()
    cid = (
        await asyncio.to_thread(
            client.api.create_container,
            AMD64,
            ["sleep", "600"],
            name=name,
            host_config=client.api.create_host_config(network_mode="none"),
        )
    )["Id"]
    source = ContainersSource([host_endpoint()])
    seen = await running(source)
    await seen.wait(_row(name, "created"), 10)

    async def cycles(count: int) -> None:
        for _ in range(count):
            mark = len(seen.events)
            await asyncio.to_thread(client.api.start, cid)
            await asyncio.to_thread(client.api.kill, cid)
            await seen.wait(_row(name, "exited"), 5, mark)

    await cycles(3)  # warm up: executor threads and pooled connections settle
    fds, threads = len(os.listdir("/proc/self/fd")), _own_threads()
    refreshes = source.watchers["host"].list_requests
    await cycles(20)
    assert source.watchers["host"].list_requests >= refreshes + 20
    assert len(os.listdir("/proc/self/fd")) <= fds + 2
    # asyncio's default executor may add workers under load (up to its cap, here
    # min(32, cores + 4)); a thread per refresh would show among the others.
    assert _own_threads() == threads
    assert len(_executor_threads()) <= min(32, (os.cpu_count() or 1) + 4)


def _executor_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("asyncio_")]


def _own_threads() -> list[str]:
    """The names of the threads that are not asyncio's default executor's workers."""
    return sorted(t.name for t in threading.enumerate() if not t.name.startswith("asyncio_"))


async def test_quiet_refresh_updates_status_text_only(client, names, running) -> None:
    name = names()
    await asyncio.to_thread(
        client.containers.run, AMD64, ["sleep", "600"], name=name, detach=True, network_mode="none"
    )
    source = ContainersSource([host_endpoint()], refresh_interval=1.5)
    seen = await running(source)
    _, first = await seen.wait(_row(name, "running"), 10)
    await asyncio.sleep(3.5)  # no docker event for this container meanwhile
    later = [e for _, e in seen.events if isinstance(e, ContainerInfo) and e.name == name][1:]
    assert later, "the quiet refresh emitted nothing"
    assert all(e.status != first.status for e in later)  # only rows whose text changed
    assert len({e.status for e in later}) == len(later)


async def test_instance_socket_discovered_while_running(
    client, running, envdeck_home, monkeypatch
) -> None:
    monkeypatch.setenv("DOCKER_CONFIG", str(envdeck_home / "no-docker-config"))
    source = ContainersSource(rediscover_interval=0.5)
    seen = await running(source)
    await seen.wait(_reachable("host", True), 10)
    # An instance's forwarded guest socket appears: here a link to the host daemon's socket.
    inst = envdeck_home / "instances" / "dev1"
    inst.mkdir(parents=True)
    host_sock = host_endpoint().socket_path
    assert host_sock is not None
    (inst / "docker.sock").symlink_to(host_sock)
    _, status = await seen.wait(_reachable("instance:dev1", True), 10)
    assert status.native_arch == "amd64"


async def test_unreachable_endpoints_have_a_reason(running, tmp_path) -> None:
    sock = tmp_path / "absent.sock"
    seen = await running(
        ContainersSource(
            [
                Endpoint("instance:ghost", f"unix://{sock}"),
                Endpoint("context:refused", "tcp://127.0.0.1:9"),
            ]
        )
    )
    _, status = await seen.wait(_reachable("instance:ghost", False), 5)
    assert status.reason == f"no socket at {sock}"
    _, status = await seen.wait(_reachable("context:refused", False), 5)
    assert status.reason and "refused" in status.reason


class SecondDaemon:
    """A dockerd of our own: its own data/exec roots, pidfile and socket; no bridge, no iptables."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.sock = root / "docker.sock"
        self.url = f"unix://{self.sock}"
        self.proc: subprocess.Popen | None = None
        self.stopped_at = 0.0  # time.monotonic() when the process had exited

    def start(self) -> None:
        log = open(self.root / "dockerd.log", "ab")  # noqa: SIM115 - owned by the child
        self.proc = subprocess.Popen(
            # Its own network namespace: it cannot touch the host's interfaces (docker0).
            [
                "unshare",
                "--net",
                shutil.which("dockerd") or "/usr/sbin/dockerd",
                "--data-root",
                str(self.root / "data"),
                "--exec-root",
                str(self.root / "exec"),
                "--pidfile",
                str(self.root / "dockerd.pid"),
                "-H",
                self.url,
                "--bridge=none",
                "--iptables=false",
                "--ip-masq=false",
            ],
            stdout=log,
            stderr=log,
            start_new_session=True,
        )
        log.close()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                docker.DockerClient(base_url=self.url, timeout=2).close()  # pings (version)
                return
            except docker.errors.DockerException:  # not up yet
                assert self.proc.poll() is None, (self.root / "dockerd.log").read_text()[-2000:]
                time.sleep(0.3)
        raise AssertionError("second dockerd did not answer within 60 s")

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)
        self.stopped_at = time.monotonic()


@pytest.fixture
def second_daemon():
    from tests.conftest import require_tool

    require_tool("dockerd", "containerd", "unshare")
    root = Path(tempfile.mkdtemp(prefix="envdeck-d2-", dir="/tmp"))  # short: socket path limit
    daemon = SecondDaemon(root)
    try:
        daemon.start()
        yield daemon
    finally:
        daemon.stop()
    subprocess.run(["umount", "-R", str(root / "data")], capture_output=True)
    shutil.rmtree(root, ignore_errors=True)


async def test_daemon_stops_and_comes_back(second_daemon, running) -> None:
    c2 = await asyncio.to_thread(docker.DockerClient, base_url=second_daemon.url, timeout=30)
    try:
        await asyncio.to_thread(ensure_amd64, c2)
        keep = (
            await asyncio.to_thread(
                c2.api.create_container, AMD64, ["true"], name="envdeck-d2-keep"
            )
        )["Id"]
    finally:
        c2.close()
    endpoint = Endpoint("context:d2", second_daemon.url)
    seen = await running(ContainersSource([endpoint]))
    await seen.wait(_reachable("context:d2", True), 10)
    await seen.wait(_row("envdeck-d2-keep", "created"), 5)

    mark = len(seen.events)
    t0 = time.monotonic()
    await asyncio.to_thread(second_daemon.stop)
    stamp, down = await seen.wait(_reachable("context:d2", False), 30, mark)
    took = stamp - second_daemon.stopped_at
    print(
        f"unreachable {stamp - t0:.2f}s after SIGTERM, {took:+.2f}s after dockerd exited "
        f"({down.reason})"
    )
    assert took <= 2.0 and down.reason

    await asyncio.sleep(3)  # down for a while: retries must stay quiet and not pile up threads
    assert sum(t.name.startswith("docker-events") for t in threading.enumerate()) <= 1

    mark = len(seen.events)
    await asyncio.to_thread(second_daemon.start)
    await seen.wait(_reachable("context:d2", True), 15, mark)
    _, row = await seen.wait(_row("envdeck-d2-keep"), 5, mark)
    assert row.id == keep
