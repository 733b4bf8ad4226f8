"""Fuzz the agent socket: thousands of generated request lines against a real in-process agent
(no QEMU; its instance has exited, so every command answers at once). Each line gets exactly one
reply, a clean one; nothing fails inside the agent; nothing hangs."""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import json
import logging
import socket
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from envdeck.backend.agent.daemon import Agent
from envdeck.backend.agent.protocol import COMMANDS
from envdeck.backend.errors import EnvdeckError
from envdeck.backend.forwards.manager import parse_spec
from tests.unit.agent_harness import agent_without_qemu


class AgentThread:
    """An agent serving on its own event loop, in a thread; records what went wrong inside."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.unhandled: list[dict[str, Any]] = []
        self.ready = threading.Event()
        self.agent: Agent | None = None
        self._thread = threading.Thread(target=self.loop.run_until_complete, args=(self._main(),))

    async def _main(self) -> None:
        self.loop.set_exception_handler(lambda _loop, context: self.unhandled.append(context))
        self._done = asyncio.Event()
        async with agent_without_qemu() as agent:
            agent.state.exited.set()
            # (as once QEMU runs: else the first forwards request waits for that build, its
            # reply comes after later ones, and the exchange below reads it as the next line's)
            await agent.guest.get()
            self.agent = agent
            self.ready.set()
            await self._done.wait()

    def __enter__(self) -> AgentThread:
        self._thread.start()
        assert self.ready.wait(10)
        return self

    def __exit__(self, *_exc: object) -> None:
        self.loop.call_soon_threadsafe(self._done.set)
        self._thread.join(10)
        self.loop.close()


class Failures(logging.Handler):
    """Log records of failed requests (``log.exception`` in the server)."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


class Line:
    """A blocking connection to the agent socket."""

    def __init__(self, path: str) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(10)  # a hang fails the test
        self.sock.connect(path)
        self.replies = self.sock.makefile("rb")
        self.sentinels = (f"sentinel-{n}" for n in itertools.count())

    def exchange(self, line: bytes) -> list[dict[str, Any]]:
        """Send ``line`` and a status request; the replies before the status reply."""
        sentinel = next(self.sentinels)
        self.sock.sendall(line + b"\n" + json.dumps({"id": sentinel, "cmd": "status"}).encode())
        self.sock.sendall(b"\n")
        replies = []
        while True:
            raw = self.replies.readline()
            assert raw, "the agent closed the connection"
            message = json.loads(raw)
            if "event" in message:
                continue
            if message.get("id") == sentinel:
                assert message["ok"] is True
                return replies
            replies.append(message)


@pytest.fixture(scope="module")
def line() -> Iterator[Line]:
    failures = Failures()
    logging.getLogger("envdeck.agent").addHandler(failures)
    try:
        with AgentThread() as served:
            assert served.agent is not None
            connection = Line(str(served.agent.inst.agent_sock))
            yield connection
            connection.sock.close()
        assert served.unhandled == []
        assert [r.getMessage() for r in failures.records] == []
    finally:
        logging.getLogger("envdeck.agent").removeHandler(failures)


def _not_a_forward(value: Any) -> bool:
    """True unless ``value`` would open a real listening socket on this host."""
    if not isinstance(value, str):
        return True
    try:
        parse_spec(value)
    except EnvdeckError:
        return True
    return False


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner),
    max_leaves=8,
)
ARGUMENTS = sorted({f.name for command in COMMANDS.values() for f in dataclasses.fields(command)})
REQUESTS = st.fixed_dictionaries(
    {"cmd": st.sampled_from(sorted(COMMANDS)) | st.text(max_size=12) | JSON},
    optional={"id": JSON, **{name: JSON.filter(_not_a_forward) for name in ARGUMENTS}},
)
LINES = st.one_of(
    REQUESTS.map(lambda request: json.dumps(request).encode()),
    JSON.map(lambda value: json.dumps(value).encode()),
    st.binary(max_size=40).map(lambda data: data.replace(b"\n", b"")),
)


@settings(max_examples=3000, deadline=None)
@given(raw=LINES)
def test_every_line_gets_exactly_one_clean_reply(line: Line, raw: bytes):
    replies = line.exchange(raw)
    assert len(replies) == 1, replies
    (reply,) = replies
    assert set(reply) in ({"id", "ok", "result"}, {"id", "ok", "error", "hint"}), reply
    if not reply["ok"]:
        assert isinstance(reply["error"], str) and "Traceback" not in reply["error"]
