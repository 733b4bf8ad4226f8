"""Move bytes between a client socket and a pair of pipes with splice(2), on the event loop.

The bytes never enter Python: each wakeup moves up to a pipe's worth inside the kernel and only
the count comes back. Half-close is kept: EOF from the client closes the pipe toward the peer,
EOF from the peer shuts down the client socket's write side.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
from collections.abc import Callable

CHUNK = 1 << 20
FLAGS = os.SPLICE_F_MOVE | os.SPLICE_F_NONBLOCK


class _Pump:
    """One direction: src -> dst until EOF or an error; ``count(n)`` after each move."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        src: int,
        dst: int,
        count: Callable[[int], None],
        at_eof: Callable[[], None],
    ) -> None:
        self.loop = loop
        self.src = src
        self.dst = dst
        self.count = count
        self.at_eof = at_eof
        self.done: asyncio.Future[OSError | None] = loop.create_future()
        self.reading = False
        self.writing = False

    def start(self) -> None:
        self._read()

    def stop(self) -> None:
        """Unregister from the loop (only what this pump registered: fd numbers get reused)."""
        if self.reading:
            self.loop.remove_reader(self.src)
            self.reading = False
        if self.writing:
            self.loop.remove_writer(self.dst)
            self.writing = False

    def _read(self) -> None:
        self.loop.add_reader(self.src, self._move)
        self.reading = True

    def _move(self) -> None:
        try:
            moved = os.splice(self.src, self.dst, CHUNK, flags=FLAGS)
        except BlockingIOError:  # the destination is full: wait until it drains
            self.stop()
            self.loop.add_writer(self.dst, self._drained)
            self.writing = True
            return
        except OSError as exc:  # the other side reset or closed: this direction is over
            self._finish(exc)
            return
        if moved == 0:
            self._finish(None)
            return
        self.count(moved)

    def _drained(self) -> None:
        self.stop()
        self._read()

    def _finish(self, error: OSError | None) -> None:
        self.stop()
        with contextlib.suppress(OSError):
            self.at_eof()
        if not self.done.done():
            self.done.set_result(error)


async def relay(
    client: socket.socket,
    to_peer: int,
    from_peer: int,
    end_to_peer: Callable[[], None],
    sent: Callable[[int], None],
    received: Callable[[int], None],
) -> None:
    """Carry client <-> peer until both directions end (or one fails); the client is closed then.

    ``end_to_peer()`` must close ``to_peer`` (EOF toward the peer); the pipes stay the caller's
    to close. ``sent(n)`` counts client -> peer bytes, ``received(n)`` peer -> client.
    """
    loop = asyncio.get_running_loop()
    client.setblocking(False)
    fd = client.fileno()
    outbound = _Pump(loop, fd, to_peer, sent, end_to_peer)
    inbound = _Pump(loop, from_peer, fd, received, lambda: client.shutdown(socket.SHUT_WR))
    outbound.start()
    inbound.start()
    try:
        pending = {outbound.done, inbound.done}
        while pending:
            finished, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
            if any(f.result() is not None for f in finished):
                break  # a reset: end both directions now
    finally:
        outbound.stop()
        inbound.stop()
        client.close()
