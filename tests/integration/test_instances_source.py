"""The dashboard's instances feed, on a real agent and QEMU."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from envdeck.backend.events import BootStage, InstanceStatus, SerialOutput
from envdeck.backend.instances import api as instances
from envdeck.backend.instances.source import InstancesSource
from envdeck.backend.sources import Hub
from tests.conftest import require_tool
from tests.integration.instance_helpers import envdeck, kill_everything

pytestmark = pytest.mark.integration


async def _collect_until(hub: Hub, seen: list, predicate, timeout: float) -> None:
    async def consume():
        async for event in hub.subscribe():
            seen.append(event)
            if predicate(event):
                return

    await asyncio.wait_for(consume(), timeout)


def test_feed_relays_boot_and_reports_stop(envdeck_home: Path):
    require_tool("qemu-system-x86_64", "qemu-img")
    envdeck("create", "feed", check=True, timeout=900)

    async def scenario():
        source = InstancesSource(rescan_s=0.5)
        hub = Hub([source])
        seen: list = []
        consumer = asyncio.create_task(
            _collect_until(
                hub,
                seen,
                lambda e: (
                    isinstance(e, InstanceStatus)
                    and e.state == "stopped"
                    and any(isinstance(x, InstanceStatus) and x.state == "ready" for x in seen)
                ),
                300,
            )
        )
        await asyncio.sleep(0.1)
        await hub.start()
        await asyncio.sleep(1.0)
        starter = asyncio.create_task(instances.start("feed"))
        await starter
        source.poke()
        await asyncio.sleep(1.0)
        await instances.stop("feed")
        source.poke()
        await consumer
        await hub.stop()
        return seen

    try:
        seen = asyncio.run(scenario())
    finally:
        kill_everything(envdeck_home)
    states = [e.state for e in seen if isinstance(e, InstanceStatus)]
    assert states[0] == "stopped" and "ready" in states and states[-1] == "stopped"
    assert {e.stage for e in seen if isinstance(e, BootStage) and e.status == "done"} >= {
        "kernel booted",
        "ready",
    }
    assert any(
        "envdeck-stage: init" in line
        for e in seen
        if isinstance(e, SerialOutput)
        for line in e.lines
    )


def test_feed_includes_the_guest_process_tree(envdeck_home: Path):
    """A running instance's guest processes arrive as ProcessDiff(host=NAME); gone when it stops."""
    from envdeck.backend.events import ProcessDiff, ProcessesUnavailable

    require_tool("qemu-system-x86_64", "qemu-img")
    envdeck("create", "guestps", check=True, timeout=900)

    async def scenario():
        source = InstancesSource(rescan_s=0.5)
        hub = Hub([source])
        seen: list = []
        consumer = asyncio.create_task(
            _collect_until(
                hub,
                seen,
                lambda e: isinstance(e, ProcessDiff) and e.host == "guestps" and e.full,
                120,
            )
        )
        await asyncio.sleep(0.1)
        await hub.start()
        await instances.start("guestps")
        source.poke()
        await consumer
        tail = asyncio.create_task(
            _collect_until(
                hub,
                seen,
                lambda e: isinstance(e, ProcessesUnavailable) and e.host == "guestps",
                120,
            )
        )
        await instances.stop("guestps")
        source.poke()
        await tail
        await hub.stop()
        return seen

    try:
        seen = asyncio.run(scenario())
    finally:
        kill_everything(envdeck_home)
    full = next(e for e in seen if isinstance(e, ProcessDiff) and e.host == "guestps" and e.full)
    commands = [" ".join(row["cmdline"]) for row in full.added]
    assert any("dropbear" in c for c in commands), commands
    assert any(row["pid"] == 1 for row in full.added)
