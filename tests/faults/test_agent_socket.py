"""Faults on the agent socket: every request line gets exactly one reply or a clean close; line
and queue sizes are bounded; nothing reaches the event loop as an unhandled exception."""

from __future__ import annotations

import asyncio
import gc
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest

from envdeck.backend.agent.daemon import Agent
from envdeck.backend.agent.protocol import MAX_REQUEST_LINE
from envdeck.backend.agent.server import MAX_CLIENT_BUFFER, MAX_IN_FLIGHT
from envdeck.backend.events import SerialOutput
from tests.unit.agent_harness import agent_without_qemu


class Raw:
    """A client that writes raw lines and reads raw replies."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def replies(self, until_id: Any) -> list[dict[str, Any]]:
        """Replies (events left out) up to and including the one for ``until_id``."""
        replies = []
        async with asyncio.timeout(5):
            while line := await self.reader.readline():
                message = json.loads(line)
                if "event" not in message:
                    replies.append(message)
                    if message.get("id") == until_id:
                        return replies
        raise AssertionError(f"connection closed before the reply to {until_id!r}: {replies}")


@pytest.fixture
async def agent() -> AsyncIterator[Agent]:
    loop = asyncio.get_running_loop()
    unhandled: list[dict[str, Any]] = []
    loop.set_exception_handler(lambda _loop, context: unhandled.append(context))
    async with agent_without_qemu() as agent:
        yield agent
    gc.collect()  # a task that failed unobserved reports itself when collected
    await asyncio.sleep(0)
    loop.set_exception_handler(None)
    assert unhandled == []


async def _connect(agent: Agent) -> Raw:
    return Raw(*await asyncio.open_unix_connection(str(agent.inst.agent_sock), limit=64 << 20))


@pytest.mark.parametrize("line", [b"[1,2]", b"42", b'"status"', b"null"])
async def test_a_line_that_is_not_an_object_gets_an_error_reply(agent: Agent, line: bytes):
    raw = await _connect(agent)
    await raw.send(line + b'\n{"id":"after","cmd":"status"}\n')
    first, after = await raw.replies("after")
    assert first == {
        "id": None,
        "ok": False,
        "error": f"a request is a JSON object, not {type(json.loads(line)).__name__}",
        "hint": None,
    }
    assert after["ok"] is True


@pytest.mark.parametrize("line", [b"\xff\xfe{}", b"{", b"[" * 100_000 + b"]" * 100_000])
async def test_undecodable_lines_get_not_json(agent: Agent, line: bytes):
    raw = await _connect(agent)
    await raw.send(line + b'\n{"id":"after","cmd":"status"}\n')
    first, _after = await raw.replies("after")
    assert first["ok"] is False and first["error"] == "not JSON"


@pytest.mark.parametrize("size", [2 << 20, MAX_REQUEST_LINE, MAX_REQUEST_LINE + 1])
async def test_a_line_over_the_limit_gets_one_error_and_the_connection_serves_on(
    agent: Agent, size: int
):
    raw = await _connect(agent)
    await raw.send(b'{"id":1,"cmd":"status","pad":"' + b"x" * size + b'"}\n')
    await raw.send(b'{"id":2,"cmd":"status"}\n')
    too_long, after = await raw.replies(2)
    assert too_long == {
        "id": None,
        "ok": False,
        "error": f"request line longer than {MAX_REQUEST_LINE} bytes",
        "hint": None,
    }
    assert after["ok"] is True


async def test_a_line_just_within_the_limit_is_served(agent: Agent):
    raw = await _connect(agent)
    head = b'{"id":1,"cmd":"status","pad":"'
    await raw.send(head + b"x" * (MAX_REQUEST_LINE - len(head) - 3) + b'"}\n')
    assert (await raw.replies(1))[0]["ok"] is True


async def test_a_last_line_without_newline_is_answered(agent: Agent):
    raw = await _connect(agent)
    await raw.send(b'{"id":1,"cmd":"status"}')
    raw.writer.write_eof()
    assert (await raw.replies(1))[0]["ok"] is True


async def test_subscribe_with_backlog_zero_sends_no_serial_lines(agent: Agent):
    agent.console.add_line("an old line")
    raw = await _connect(agent)
    await raw.send(b'{"id":1,"cmd":"subscribe","backlog":0}\n{"id":2,"cmd":"status"}\n')
    events = []
    async with asyncio.timeout(5):
        while (message := json.loads(await raw.reader.readline())).get("id") != 2:
            events.append(message)
    assert events[0] == {"id": 1, "ok": True, "result": agent.state.status.to_dict()}
    assert [e for e in events if e.get("event", {}).get("kind") == SerialOutput.kind] == []


@pytest.mark.parametrize("backlog", ['"x"', "1.5", "-1", "true", "null"])
async def test_a_bad_backlog_gets_exactly_one_error_and_no_subscription(agent: Agent, backlog):
    raw = await _connect(agent)
    await raw.send(b'{"id":1,"cmd":"subscribe","backlog":%s}\n' % backlog.encode())
    await raw.send(b'{"id":2,"cmd":"status"}\n')
    replies = await raw.replies(2)
    assert [r["id"] for r in replies] == [1, 2]
    assert replies[0]["ok"] is False and "backlog" in replies[0]["error"]
    assert not any(session.subscribed for session in agent.server.sessions)


async def test_a_client_that_stops_reading_is_dropped(agent: Agent):
    raw = await _connect(agent)
    await raw.send(b'{"id":1,"cmd":"subscribe","backlog":0}\n')
    await raw.replies(1)
    line = "x" * (1 << 20)
    for _ in range(2 * MAX_CLIENT_BUFFER // len(line)):  # never read by the client
        agent.state.emit(SerialOutput(instance="quiet", lines=[line]))
        await asyncio.sleep(0)
    async with asyncio.timeout(5):
        while agent.server.sessions:
            await asyncio.sleep(0.01)


async def test_requests_in_flight_are_bounded(agent: Agent):
    """A stop waits for QEMU to exit: more than MAX_IN_FLIGHT at once are refused, one reply
    each, and the others are all answered once QEMU is gone."""
    raw = await _connect(agent)
    await raw.send(
        b"".join(
            b'{"id":%d,"cmd":"stop","timeout":30}\n' % ident for ident in range(MAX_IN_FLIGHT + 1)
        )
    )
    refused = await raw.replies(MAX_IN_FLIGHT)
    assert refused == [
        {
            "id": MAX_IN_FLIGHT,
            "ok": False,
            "error": f"more than {MAX_IN_FLIGHT} requests unanswered; wait for them",
            "hint": None,
        }
    ]
    agent.state.exited.set()
    answered = []
    async with asyncio.timeout(5):
        while len(answered) < MAX_IN_FLIGHT:
            message = json.loads(await raw.reader.readline())
            if "event" not in message:
                answered.append(message)
    assert sorted(r["id"] for r in answered) == list(range(MAX_IN_FLIGHT))
    assert all(r["ok"] for r in answered)
