"""The agent socket's wire form: JSON Lines both ways, and the async client for it.

Requests: ``{"id": N, "cmd": "...", ...}``. Replies: ``{"id": N, "ok": true, "result": ...}`` or
``{"id": N, "ok": false, "error": "...", "hint": "..."}``. Pushed events: ``{"event": {...}}``
(the JSON form of :mod:`events`).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from envdeck.backend.errors import EnvdeckError
from envdeck.backend.events import Event, from_dict

MAX_LINE = 16 << 20


class AgentUnavailable(EnvdeckError):
    """No agent answers on the instance's socket."""


class AgentError(EnvdeckError):
    """The agent refused or failed a command."""


def encode(message: dict[str, Any]) -> bytes:
    """One protocol line."""
    return (json.dumps(message, separators=(",", ":"), default=str) + "\n").encode()


class AgentClient:
    """A connection to one instance agent: requests with replies, and a stream of events."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer
        self._ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future[Any]] = {}
        self._events: asyncio.Queue[Event | None] = asyncio.Queue()
        self._task = asyncio.create_task(self._read_loop())

    @classmethod
    async def connect(cls, socket_path: Path, timeout: float = 0.0) -> AgentClient:
        """Connect, retrying for up to ``timeout`` seconds while the agent starts."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            try:
                reader, writer = await asyncio.open_unix_connection(
                    str(socket_path), limit=MAX_LINE
                )
                return cls(reader, writer)
            except (FileNotFoundError, ConnectionRefusedError, OSError) as exc:
                if loop.time() >= deadline:
                    raise AgentUnavailable(f"no agent answers on {socket_path}: {exc}") from None
                await asyncio.sleep(0.05)

    async def _read_loop(self) -> None:
        try:
            while line := await self._reader.readline():
                message = json.loads(line)
                if "event" in message:
                    with contextlib.suppress(ValueError):
                        self._events.put_nowait(from_dict(message["event"]))
                    continue
                future = self._pending.pop(message.get("id"), None)
                if future and not future.done():
                    if message.get("ok"):
                        future.set_result(message.get("result"))
                    else:
                        future.set_exception(
                            AgentError(
                                message.get("error", "agent error"), hint=message.get("hint")
                            )
                        )
        except (ConnectionError, json.JSONDecodeError, asyncio.IncompleteReadError):
            pass
        finally:
            for future in self._pending.values():
                if not future.done():
                    future.set_exception(AgentUnavailable("the agent closed the connection"))
            self._pending.clear()
            self._events.put_nowait(None)

    async def request(self, cmd: str, reply_timeout: float | None = 30.0, **args: Any) -> Any:
        """Send a command and wait for its result (raises AgentError / AgentUnavailable)."""
        ident = next(self._ids)
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending[ident] = future
        try:
            self._writer.write(encode({"id": ident, "cmd": cmd, **args}))
            await self._writer.drain()
        except (ConnectionError, OSError) as exc:
            self._pending.pop(ident, None)
            raise AgentUnavailable(f"the agent went away: {exc}") from None
        return await asyncio.wait_for(future, reply_timeout)

    async def events(self) -> AsyncIterator[Event]:
        """Events pushed by the agent, until the connection closes."""
        while (event := await self._events.get()) is not None:
            yield event

    async def close(self) -> None:
        """Close the connection."""
        self._task.cancel()
        self._writer.close()
        with contextlib.suppress(Exception):
            await self._writer.wait_closed()
