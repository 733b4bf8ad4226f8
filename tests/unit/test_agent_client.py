"""The typed AgentClient against a real agent socket (an agent with no QEMU behind it)."""

from __future__ import annotations

import asyncio

import pytest

from envdeck.backend.agent.client import AgentClient
from envdeck.backend.agent.daemon import Agent
from envdeck.backend.agent.protocol import AgentError
from envdeck.backend.events import AgentMessage, Event, InstanceStatus, SerialOutput
from tests.unit.agent_harness import agent_without_qemu


async def _events_until_marker(client: AgentClient, agent: Agent) -> list[Event]:
    """The events the client has been sent, up to a message we emit now."""
    await client.status()  # its reply follows any event already queued for this client
    agent.state.say("info", "marker")
    seen: list[Event] = []
    async with asyncio.timeout(5):
        async for event in client.events():
            if isinstance(event, AgentMessage) and event.text == "marker":
                return seen
            seen.append(event)
    raise AssertionError("the event stream ended")


async def test_status_is_the_instance_status():
    async with agent_without_qemu() as agent:
        client = await AgentClient.connect(agent.inst.agent_sock)
        try:
            status = await client.status()
        finally:
            await client.close()
    assert isinstance(status, InstanceStatus)
    assert (status.instance, status.state) == ("quiet", "starting")


@pytest.mark.parametrize(("backlog", "expected"), [(0, None), (2, ["two", "three"])])
async def test_subscribe_sends_the_status_then_the_asked_serial_backlog(backlog, expected):
    async with agent_without_qemu() as agent:
        for line in ("one", "two", "three"):
            agent.console.add_line(line)
        client = await AgentClient.connect(agent.inst.agent_sock)
        try:
            status = await client.subscribe(backlog=backlog)
            events = await _events_until_marker(client, agent)
        finally:
            await client.close()
    assert status.state == "starting"
    assert isinstance(events[0], InstanceStatus)
    serial = [e.lines for e in events if isinstance(e, SerialOutput)]
    assert serial == ([] if expected is None else [expected])


async def test_subscribers_get_live_events_until_the_agent_closes():
    async with agent_without_qemu() as agent:
        client = await AgentClient.connect(agent.inst.agent_sock)
        await client.subscribe(backlog=0)
        await _events_until_marker(client, agent)
        agent.state.set_status(state="booting")
        async with asyncio.timeout(5):
            async for event in client.events():
                if isinstance(event, InstanceStatus):
                    assert event.state == "booting"
                    break
        await agent.server.close()
        async with asyncio.timeout(5):
            assert [event async for event in client.events()] == []
        await client.close()


async def test_follow_serial_streams_serial_output_only():
    async with agent_without_qemu() as agent:
        agent.console.add_line("before")
        client = await AgentClient.connect(agent.inst.agent_sock)
        try:
            where = await client.follow_serial()
            agent.state.say("info", "not for serial followers")
            agent.console.add_line("after")
            async with asyncio.timeout(5):
                event = await anext(aiter(client.events()))
        finally:
            await client.close()
    assert where == {"offset": len("before\n"), "path": str(agent.inst.serial_log)}
    assert isinstance(event, SerialOutput) and event.lines == ["after"]


async def test_refusals_come_back_as_agent_errors_with_hints():
    async with agent_without_qemu() as agent:
        client = await AgentClient.connect(agent.inst.agent_sock)
        try:
            with pytest.raises(AgentError, match="only a running instance can be paused"):
                await client.pause()
            with pytest.raises(AgentError, match="not paused") as caught:
                await client.resume()
            assert caught.value.hint == "pause it first: envdeck pause quiet"
            with pytest.raises(AgentError, match="is not GUEST"):
                await client.forward_add("eighty")
            with pytest.raises(AgentError, match="no forward for guest port 80"):
                await client.forward_remove("80")
        finally:
            await client.close()


async def test_forwards_stages_and_stop_of_an_exited_instance():
    async with agent_without_qemu() as agent:
        agent.state.tracker.reached("qemu started", "pid 1")
        agent.state.exited.set()
        client = await AgentClient.connect(agent.inst.agent_sock)
        try:
            assert await client.forwards() == []
            stages = await client.stages()
            assert await client.stop(timeout=1) == {
                "how": "already",
                "text": "the instance is not running",
            }
        finally:
            await client.close()
    assert [(s.stage, s.status) for s in stages][:2] == [
        ("qemu started", "done"),
        ("first serial output", "running"),
    ]
