"""The agent socket: owner-only, JSON Lines, one command table.

Every request line gets exactly one reply: an error when it is longer than
``MAX_REQUEST_LINE`` (skipped without being held in memory), not JSON, not an object, names no
known command or has a bad argument. A client that stops reading is dropped once
``MAX_CLIENT_BUFFER`` bytes wait for it; one with ``MAX_IN_FLIGHT`` requests unanswered gets
errors for more.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import socket
import struct
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from envdeck.backend.agent.protocol import (
    MAX_REQUEST_LINE,
    BadRequest,
    Request,
    encode,
    parse_request,
)
from envdeck.backend.agent.tasks import TaskSet
from envdeck.backend.errors import EnvdeckError
from envdeck.backend.events import Event, SerialOutput

log = logging.getLogger("envdeck.agent")

MAX_CLIENT_BUFFER = 8 << 20
MAX_IN_FLIGHT = 64


class Session:
    """One connected client: what it subscribed to, and its outgoing lines."""

    def __init__(self, writer: asyncio.StreamWriter) -> None:
        self.writer = writer
        self.subscribed = False
        self.serial_only = False
        self.in_flight = 0
        self.idle = asyncio.Event()  # no request of this client is being answered
        self.idle.set()

    def send(self, message: dict[str, Any]) -> None:
        """Queue a message; a client that stops reading is dropped rather than buffered forever."""
        if self.writer.is_closing():
            return
        if self.writer.transport.get_write_buffer_size() > MAX_CLIENT_BUFFER:
            self.writer.close()
            return
        self.writer.write(encode(message))

    def reply(self, ident: Any, result: Any) -> None:
        """The successful answer to request ``ident``."""
        self.send({"id": ident, "ok": True, "result": result})

    def refuse(self, ident: Any, error: str, hint: str | None = None) -> None:
        """The error answer to request ``ident``."""
        self.send({"id": ident, "ok": False, "error": error, "hint": hint})

    def push(self, event: Event) -> None:
        """An event, if this client asked for that kind."""
        if self.subscribed and (not self.serial_only or isinstance(event, SerialOutput)):
            self.send({"event": event.to_dict()})


@dataclass
class Followed:
    """A handler's result that is followed, right after the reply, by these events."""

    result: Any
    events: list[Event] = field(default_factory=list)


Handler = Callable[[Session, Any], Awaitable[Any]]
CommandTable = Mapping[type[Request], Handler]


def _peer_is_owner(writer: asyncio.StreamWriter) -> bool:
    sock = writer.get_extra_info("socket")
    if sock is None:
        return True
    creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    _pid, uid, _gid = struct.unpack("3i", creds)
    return uid in (os.getuid(), 0)


class AgentServer:
    """Serves ``agent.sock``: parses requests, dispatches them through ``commands``."""

    def __init__(self, path: Path, commands: CommandTable) -> None:
        self.path = path
        self.commands = commands
        self.sessions: set[Session] = set()
        self.tasks = TaskSet()  # requests being answered
        self._connections: set[asyncio.Task[Any]] = set()
        self._server: asyncio.AbstractServer | None = None

    async def start(self) -> None:
        """Listen on the socket (replacing a stale one), readable by the owner only."""
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
        old_umask = os.umask(0o177)
        try:
            self._server = await asyncio.start_unix_server(
                self._serve, str(self.path), limit=MAX_REQUEST_LINE
            )
        finally:
            os.umask(old_umask)
        os.chmod(self.path, 0o600)

    def publish(self, event: Event) -> None:
        """Send an event to every client subscribed to it."""
        for session in list(self.sessions):
            session.push(event)

    async def close(self) -> None:
        """Stop listening, hang up on every client, end running requests, remove the socket."""
        if self._server:
            self._server.close()
        for session in list(self.sessions):
            session.writer.close()
        await self.tasks.cancel()
        if self._connections:  # they end as their (closed) connections reach EOF
            await asyncio.wait(self._connections, timeout=1)
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Serve one client connection."""
        if not _peer_is_owner(writer):
            writer.close()
            return
        session = Session(writer)
        self.sessions.add(session)
        connection = asyncio.current_task()
        assert connection is not None  # asyncio runs each connection's handler as a task
        self._connections.add(connection)
        try:
            await self._read_lines(reader, session)
            await session.idle.wait()  # a client that closed its end may still read replies
        except (ConnectionError, OSError):
            pass
        finally:
            self.sessions.discard(session)
            self._connections.discard(connection)
            writer.close()

    async def _read_lines(self, reader: asyncio.StreamReader, session: Session) -> None:
        """Hand each line to :meth:`_receive`; refuse one that is too long, dropping it as it
        arrives."""
        too_long = False
        while True:
            try:
                line = await reader.readuntil(b"\n")
            except asyncio.IncompleteReadError as end:  # the client closed: maybe a last line
                if end.partial and not too_long:
                    self._receive(session, end.partial)
                return
            except asyncio.LimitOverrunError as overrun:
                await reader.readexactly(overrun.consumed)  # already buffered: drop it
                too_long = True
                continue
            if too_long:
                too_long = False
                session.refuse(None, f"request line longer than {MAX_REQUEST_LINE} bytes")
            else:
                self._receive(session, line)

    def _receive(self, session: Session, line: bytes) -> None:
        """Answer one line: errors at once, a valid request in its own task."""
        try:
            message = json.loads(line)
        except (ValueError, RecursionError):
            session.refuse(None, "not JSON")
            return
        ident = message.get("id") if isinstance(message, dict) else None
        try:
            request = parse_request(message)
        except BadRequest as exc:
            session.refuse(ident, exc.message, exc.hint)
            return
        if session.in_flight >= MAX_IN_FLIGHT:
            session.refuse(ident, f"more than {MAX_IN_FLIGHT} requests unanswered; wait for them")
            return
        session.in_flight += 1
        session.idle.clear()
        self.tasks.spawn(self._answer(session, ident, request))

    async def _answer(self, session: Session, ident: Any, request: Request) -> None:
        try:
            result = await self.commands[type(request)](session, request)
        except EnvdeckError as exc:
            session.refuse(ident, exc.message, exc.hint)
        except Exception as exc:  # noqa: BLE001 - one bad request must not kill the agent
            log.exception("request %r failed", request.name)
            session.refuse(ident, f"{type(exc).__name__}: {exc}")
        else:
            if isinstance(result, Followed):
                session.reply(ident, result.result)
                for event in result.events:
                    session.send({"event": event.to_dict()})
            else:
                session.reply(ident, result)
        finally:
            session.in_flight -= 1
            if not session.in_flight:
                session.idle.set()
