"""The async client of an instance agent: one typed method per command, and its event stream."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, NotRequired, TypedDict

from envdeck.backend.agent import protocol as p
from envdeck.backend.agent.protocol import MAX_LINE, AgentError, AgentUnavailable, encode
from envdeck.backend.events import BootStage, Event, InstanceStatus, from_dict


class SerialPosition(TypedDict):
    """Where serial.log ended when ``follow_serial`` was answered."""

    offset: int
    path: str


class Outcome(TypedDict):
    """What a stop, pause, resume or suspend did, in words (a stop says ``how``: powerdown, quit,
    kill, already)."""

    how: NotRequired[str]
    text: str


def _status(data: dict[str, Any]) -> InstanceStatus:
    return InstanceStatus(**{k: v for k, v in data.items() if k != "kind"})


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

    # --- the commands -----------------------------------------------------------------------

    async def status(self, reply_timeout: float = 30.0) -> InstanceStatus:
        """The instance status."""
        return _status(await self._call(p.Status(), reply_timeout))

    async def subscribe(self, backlog: int) -> InstanceStatus:
        """Start the event stream (:meth:`events`): the status, the recent stages, messages and
        forwards, the last ``backlog`` serial lines, then everything live."""
        return _status(await self._call(p.Subscribe(backlog=backlog)))

    async def follow_serial(self) -> SerialPosition:
        """Stream serial output only, from the position in serial.log returned."""
        position: SerialPosition = await self._call(p.FollowSerial())
        return position

    async def stop(self, timeout: float = 20.0) -> Outcome:
        """Power down, then quit, then kill; waits for it (``timeout`` plus some slack)."""
        outcome: Outcome = await self._call(p.Stop(timeout=timeout), timeout + 30)
        return outcome

    async def pause(self) -> Outcome:
        """Freeze the guest (QMP stop)."""
        outcome: Outcome = await self._call(p.Pause())
        return outcome

    async def resume(self) -> Outcome:
        """Let a paused guest run again."""
        outcome: Outcome = await self._call(p.Resume())
        return outcome

    async def suspend(self, timeout: float = 600.0) -> Outcome:
        """Save the guest to disk and end QEMU (the instance reads ``suspended``)."""
        outcome: Outcome = await self._call(p.Suspend(), timeout)
        return outcome

    async def forwards(self) -> list[dict[str, Any]]:
        """The instance's forwards (the ``envdeck forwards --json`` rows)."""
        return list(await self._call(p.Forwards()))

    async def forward_add(self, spec: str) -> dict[str, Any]:
        """Add a manual forward; its row."""
        return dict(await self._call(p.ForwardAdd(spec=spec)))

    async def forward_remove(self, guest: str) -> None:
        """Remove a forward by its guest port."""
        await self._call(p.ForwardRemove(guest=guest))

    async def stages(self) -> list[BootStage]:
        """The boot stages reported so far."""
        stages = [from_dict(stage) for stage in await self._call(p.Stages())]
        return [stage for stage in stages if isinstance(stage, BootStage)]

    # --- the connection ---------------------------------------------------------------------

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

    async def _call(self, request: p.Request, reply_timeout: float | None = 30.0) -> Any:
        """Send a request and wait for its result (raises AgentError / AgentUnavailable)."""
        ident = next(self._ids)
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending[ident] = future
        try:
            self._writer.write(encode(request.wire(ident)))
            await self._writer.drain()
        except (ConnectionError, OSError) as exc:
            self._pending.pop(ident, None)
            raise AgentUnavailable(f"the agent went away: {exc}") from None
        return await asyncio.wait_for(future, reply_timeout)

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
                        error = message.get("error", "agent error")
                        future.set_exception(AgentError(error, hint=message.get("hint")))
        except (ConnectionError, json.JSONDecodeError, asyncio.IncompleteReadError):
            pass
        finally:
            for future in self._pending.values():
                if not future.done():
                    future.set_exception(AgentUnavailable("the agent closed the connection"))
            self._pending.clear()
            self._events.put_nowait(None)
