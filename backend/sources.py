"""The seam between backend producers and their consumers (TUI, `envdeck record`).

A *source* is an async callable that runs until cancelled and hands every event it produces to
``emit``. The :class:`Hub` runs a set of sources and fans their events out to subscribers.

Some sources can do more, and say so by matching a capability protocol: :class:`Pokeable`
(rescan now, e.g. after the user created an instance) and :class:`ReplayClock` (a playback
with the recording's own clock).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncGenerator, Callable
from typing import Protocol, runtime_checkable

from envdeck.backend.events import Event

Emit = Callable[[Event], None]


class Source(Protocol):
    """Anything that produces backend events until cancelled."""

    name: str

    async def run(self, emit: Emit) -> None:  # pragma: no cover - protocol
        """Produce events by calling ``emit`` until cancelled."""


@runtime_checkable
class Pokeable(Protocol):
    """A source that can look again at once instead of at its next interval."""

    def poke(self) -> None:  # pragma: no cover - protocol
        """Rescan as soon as possible."""


@runtime_checkable
class ReplayClock(Protocol):
    """A source that plays a recording: its events carry the recording's time, not now."""

    def now(self) -> float:  # pragma: no cover - protocol
        """The recording's wall clock at this point of the playback."""


class Hub:
    """Run sources as tasks; deliver each event to every subscriber queue (bounded)."""

    def __init__(self, sources: list[Source], *, queue_size: int = 10_000) -> None:
        self.sources = sources
        self._queues: list[asyncio.Queue[Event]] = []
        self._tasks: list[asyncio.Task[None]] = []
        self._queue_size = queue_size
        self.errors: list[tuple[str, BaseException]] = []
        self._started = False

    def emit(self, event: Event) -> None:
        """Deliver ``event`` to every subscriber (drops the oldest if one falls behind)."""
        for queue in self._queues:
            if queue.full():
                with contextlib.suppress(asyncio.QueueEmpty):
                    queue.get_nowait()
            queue.put_nowait(event)

    async def start(self) -> None:
        """Start every source as a task; a failing source is recorded, not fatal."""
        self._started = True
        for source in self.sources:
            self._tasks.append(asyncio.create_task(self._guard(source), name=source.name))

    def add(self, source: Source) -> None:
        """Add a source; it starts at once when the hub runs already (else with the others)."""
        self.sources.append(source)
        if self._started:
            self._tasks.append(asyncio.create_task(self._guard(source), name=source.name))

    async def _guard(self, source: Source) -> None:
        try:
            await source.run(self.emit)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - a source's failure must not stop the others
            logging.getLogger("envdeck.sources").exception("source %s failed", source.name)
            self.errors.append((source.name, exc))

    def poke(self) -> None:
        """Ask every source that can rescan now to do so."""
        for source in self.sources:
            if isinstance(source, Pokeable):
                source.poke()

    def replay(self) -> ReplayClock | None:
        """The source that plays a recording, if this hub runs one."""
        return next((s for s in self.sources if isinstance(s, ReplayClock)), None)

    async def stop(self, timeout: float = 5.0) -> None:
        """Cancel every source and wait (bounded) for them to end."""
        for task in self._tasks:
            task.cancel()
        if self._tasks:
            _done, pending = await asyncio.wait(self._tasks, timeout=timeout)
            for task in pending:
                self.errors.append((task.get_name(), TimeoutError("did not stop when cancelled")))
        self._tasks.clear()
        self._started = False

    async def subscribe(self) -> AsyncGenerator[Event, None]:
        """Yield events as they arrive, until the caller stops iterating."""
        queue: asyncio.Queue[Event] = asyncio.Queue(self._queue_size)
        self._queues.append(queue)
        try:
            while True:
                yield await queue.get()
        finally:
            self._queues.remove(queue)
