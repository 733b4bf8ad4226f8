"""The docker VM's socket forward dies and comes back (issue #12, faults): every sshd in the
guest killed, then the guest paused. The real containers source follows ``instance:dev``
meanwhile; its endpoint must say why it is down (once, not a storm of errors), follow the events
again on its own once the instance is back, and end with the rows the daemon has: a container
run while the forward was down shows up once, one removed meanwhile is gone. The VM is whole again
at the end: sshd back, the guest resumed.

On the session's shared docker VM (tests/docker_vm_fixture.py; its SSH keepalive is short, so a
paused guest's SSH connection drops within the pause); the phases' times are printed.
"""

from __future__ import annotations

import asyncio

import pytest

from envdeck.backend.events import ContainerInfo, ContainerRemoved, EndpointStatus
from tests.docker_vm_fixture import SSH_KEEPALIVE_S, DockerVM, docker
from tests.integration.instance_helpers import envdeck
from tests.integration.test_docker_vm import _until

pytestmark = pytest.mark.integration

CTX = ("--context", "envdeck-dev")


class Feed:
    """What the containers source emitted, folded the way the dashboard's model keeps rows."""

    def __init__(self) -> None:
        self.events: list = []
        self.rows: dict[str, ContainerInfo] = {}

    def __call__(self, event: object) -> None:
        self.events.append(event)
        if isinstance(event, ContainerInfo):
            self.rows[event.id] = event
        elif isinstance(event, ContainerRemoved):
            self.rows.pop(event.id, None)

    def names(self) -> list[str]:
        return sorted(row.name for row in self.rows.values())

    def statuses(self, since: int = 0) -> list[EndpointStatus]:
        return [e for e in self.events[since:] if isinstance(e, EndpointStatus)]

    def reachable(self) -> bool:
        statuses = self.statuses()
        return bool(statuses) and statuses[-1].reachable


def test_the_docker_socket_forward_dies_and_comes_back(docker_vm: DockerVM) -> None:
    amd64, _ = docker_vm.images
    agent_log = docker_vm.instance_dir / "agent.log"
    logged_before = agent_log.stat().st_size
    for name in ("keeper", "victim"):
        docker(*CTX, "run", "-d", "--name", name, amd64, "sleep", "600")
    asyncio.run(_scenario(amd64))
    logged = agent_log.read_bytes()[logged_before:]
    assert b"Traceback" not in logged  # the cut connections ended quietly


async def _scenario(amd64: str) -> None:
    from envdeck.backend.containers.source import ContainersSource

    feed = Feed()
    task = asyncio.create_task(ContainersSource(["instance:dev"], retry_max=0.5).run(feed))
    try:
        await _until(lambda: feed.reachable() and feed.names() == ["keeper", "victim"], 30)
        await _sshd_killed(feed, amd64)
        await _paused(feed, amd64)
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


async def _sshd_killed(feed: Feed, amd64: str) -> None:
    """Every sshd killed (sessions too) while, in the guest, a container is run and another
    removed; sshd comes back 10 s later."""
    mark = len(feed.events)
    fault = (
        "sleep 1; systemctl stop ssh.service; pkill -KILL -x sshd; "
        f"docker run -d --name during {amd64} sleep 600; docker rm -f victim; "
        "sleep 10; systemctl start ssh.service"
    )
    await asyncio.to_thread(
        envdeck, "exec", "dev", "--", "systemd-run", "--collect", "--unit", "envdeck-fault",
        "sh", "-c", fault, check=True,
    )  # fmt: skip
    down = await _until(lambda: any(not s.reachable for s in feed.statuses(mark)), 20)
    print(f"sshd killed: endpoint unreachable after {down:.1f}s")
    back = await _until(lambda: feed.reachable() and feed.names() == ["during", "keeper"], 120)
    statuses = feed.statuses(mark)
    print(f"sshd back: endpoint reachable and rows current {back:.1f}s later")
    print("  statuses: " + "; ".join(f"{s.reachable} {s.reason}" for s in statuses))
    reasons = [s.reason or "" for s in statuses if not s.reachable]
    assert 1 <= len(reasons) <= 4, reasons  # why it is down, not an error per retry
    assert any("SSH connection to the guest lost" in r for r in reasons), reasons
    assert statuses[-1].reachable
    _no_duplicates(feed, mark)


async def _paused(feed: Feed, amd64: str) -> None:
    """`envdeck pause` for longer than SSH's keepalives last, then `envdeck resume`."""
    mark = len(feed.events)
    await asyncio.to_thread(envdeck, "pause", "dev", check=True)
    said = await _until(lambda: any(not s.reachable for s in feed.statuses(mark)), 5)
    print(f"paused: endpoint unreachable after {said:.1f}s")
    await asyncio.sleep(3 * SSH_KEEPALIVE_S + 4)  # SSH gives up meanwhile (3 keepalives missed)
    statuses = feed.statuses(mark)
    assert [(s.reachable, s.reason) for s in statuses] == [
        (False, "instance paused (envdeck resume dev)")
    ]  # one status for the whole pause: no retries against a frozen guest
    await asyncio.to_thread(envdeck, "resume", "dev", check=True)
    back = await _until(feed.reachable, 90)
    print(f"resumed: endpoint reachable after {back:.1f}s")
    await asyncio.to_thread(docker, *CTX, "run", "-d", "--name", "after", amd64, "sleep", "600")
    row = await _until(lambda: "after" in feed.names(), 10)
    print(f"a container run after the resume: its row {row * 1000:.0f} ms after 'docker run'")
    assert feed.names() == ["after", "during", "keeper"]
    _no_duplicates(feed, mark)


def _no_duplicates(feed: Feed, since: int) -> None:
    """Each container name had one id, and a row was removed only once."""
    ids: dict[str, set[str]] = {}
    for event in feed.events:
        if isinstance(event, ContainerInfo):
            ids.setdefault(event.name, set()).add(event.id)
    assert all(len(found) == 1 for found in ids.values()), ids
    removed = [e.id for e in feed.events[since:] if isinstance(e, ContainerRemoved)]
    assert len(removed) == len(set(removed)), removed
