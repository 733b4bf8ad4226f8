"""Recordings: the backend's event stream on disk, and a Source that plays one back.

Format: JSON Lines, one event per line, ``{"t": seconds_since_start, **event.to_dict()}``.
A recording drives the real dashboard with no backend (``envdeck replay FILE``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from envdeck.backend.errors import UserInputError
from envdeck.backend.events import Event, UnknownEvent, from_dict
from envdeck.backend.sources import Emit, Hub, ReplayClock, Source


def read_recording(path: Path) -> Iterator[tuple[float, Event]]:
    """Yield ``(t, event)`` for each line; skip kinds this build does not know.

    Raises UserInputError (with file:line) on a line that is not JSON.
    """
    with open(path, encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                data = json.loads(line)
            except json.JSONDecodeError as exc:
                raise UserInputError(
                    f"not a JSON line: {exc.msg}",
                    where=f"{path}:{lineno}",
                    hint="a recording is JSON Lines written by 'envdeck record'",
                ) from exc
            t = float(data.pop("t", 0.0))
            try:
                yield t, from_dict(data)
            except (UnknownEvent, TypeError):
                continue  # a newer or older event kind: play what we understand


class ReplaySource(ReplayClock):
    """Play a recording with its original timing (``speed`` 2.0 = twice as fast, 0 = at once)."""

    def __init__(self, path: str | Path, speed: float = 1.0) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise UserInputError(f"no such recording: {self.path}")
        self.speed = speed
        self.name = f"replay:{self.path.name}"
        self._base_ts: float | None = None
        self._t0_mono: float | None = None
        self._frozen_at: float | None = None
        self.events_played = 0

    def now(self) -> float:
        """The recording's wall clock at this point of the playback (for uptimes and ages)."""
        if self._base_ts is None or self._t0_mono is None:
            return time.time()
        if self._frozen_at is not None:
            return self._frozen_at
        elapsed = time.monotonic() - self._t0_mono
        return self._base_ts + elapsed * (self.speed if self.speed > 0 else 1.0)

    async def run(self, emit: Emit) -> None:
        """Emit every event at its recorded offset, then return."""
        self._t0_mono = time.monotonic()
        last_ts = None
        for t, event in read_recording(self.path):
            if self._base_ts is None:
                self._base_ts = event.ts - t
            if self.speed > 0:
                delay = self._t0_mono + t / self.speed - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
            else:
                await asyncio.sleep(0)  # stay cancellable and let the consumer keep up
            emit(event)
            last_ts = event.ts
            self.events_played += 1
        if self.speed <= 0 and last_ts is not None:
            self._frozen_at = last_ts  # instant replay: time stops at the last event


def _write(fh: IO[str], t: float, event: Event) -> None:
    fh.write(json.dumps({"t": round(t, 4), **event.to_dict()}, separators=(",", ":"), default=str))
    fh.write("\n")


async def record(hub_or_sources: Hub | list[Source], path: str | Path, seconds: float) -> int:
    """Write every event for ``seconds`` to ``path``; returns the number of events written.

    Given a list of sources, runs them in a private Hub (started and stopped here); given a Hub,
    subscribes to it (the caller owns starting and stopping it).
    """
    if isinstance(hub_or_sources, Hub):
        hub, own = hub_or_sources, False
    else:
        hub, own = Hub(list(hub_or_sources)), True
    count = 0
    start = time.monotonic()
    stream = hub.subscribe()
    first = asyncio.ensure_future(anext(stream))
    await asyncio.sleep(0)  # the subscription's queue exists before any source runs
    if own:
        await hub.start()
    deadline = start + seconds
    pending: asyncio.Future[Event] = first
    try:
        with open(path, "w", encoding="utf-8") as fh:
            while True:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                done, _ = await asyncio.wait({pending}, timeout=remaining)
                if not done:
                    break
                _write(fh, time.monotonic() - start, pending.result())
                count += 1
                pending = asyncio.ensure_future(anext(stream))
            fh.flush()
    finally:
        pending.cancel()
        with contextlib.suppress(asyncio.CancelledError, StopAsyncIteration):
            await pending
        await stream.aclose()
        if own:
            await hub.stop()
    return count
