"""Recordings: the backend's event stream on disk, and a Source that plays one back.

Format: JSON Lines, one event per line, ``{"t": seconds_since_start, **event.to_dict()}``.
A recording drives the real dashboard with no backend (``envdeck replay FILE``). A line that is
not a well-typed event (bad UTF-8, not JSON, a field of the wrong type) is skipped and counted.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from envdeck.backend.errors import UserInputError
from envdeck.backend.events import BadEvent, Event, UnknownEvent, from_dict
from envdeck.backend.sources import Emit, Hub, ReplayClock, Source

MAX_LINE_BYTES = 16 << 20  # a longer line is bad (skipped), never read into memory whole


class RecordingReader:
    """Iterate a recording as ``(t, event)``; every line that is not a well-typed event is
    skipped and counted (``skipped``, the first reasons in ``problems``), never raised."""

    PROBLEMS_KEPT = 5

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.skipped = 0
        self.problems: list[str] = []  # "FILE:LINE: why", the first few

    def __iter__(self) -> Iterator[tuple[float, Event]]:
        with open(self.path, "rb") as fh:
            lineno = 0
            while raw := fh.readline(MAX_LINE_BYTES + 1):
                lineno += 1
                if len(raw) > MAX_LINE_BYTES and not raw.endswith(b"\n"):
                    while (rest := fh.readline(MAX_LINE_BYTES)) and not rest.endswith(b"\n"):
                        pass  # drop the rest of the over-long line
                    self._skip(lineno, f"longer than {MAX_LINE_BYTES} bytes")
                    continue
                if not raw.strip():
                    continue
                try:
                    yield decode_line(raw)
                except BadLine as exc:
                    self._skip(lineno, str(exc))

    def _skip(self, lineno: int, why: str) -> None:
        self.skipped += 1
        if len(self.problems) < self.PROBLEMS_KEPT:
            self.problems.append(f"{self.path}:{lineno}: {why}")

    def summary(self) -> str:
        """One line for the user: how many lines were skipped and the first reason."""
        first = f" (first: {self.problems[0]})" if self.problems else ""
        noun = "line" if self.skipped == 1 else "lines"
        return f"{self.skipped} bad {noun} of the recording skipped{first}"


class BadLine(ValueError):
    """A recording line that is not a well-typed event (why, for the user)."""


def decode_line(raw: bytes) -> tuple[float, Event]:
    """``(t, event)`` of one line, or BadLine (bad UTF-8, not JSON, bad or unknown event)."""
    try:
        data = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise BadLine("not UTF-8") from None
    except (ValueError, RecursionError) as exc:  # (JSONDecodeError, over-long ints, deep nesting)
        raise BadLine(f"not JSON: {getattr(exc, 'msg', type(exc).__name__)}") from None
    if not isinstance(data, dict):
        raise BadLine(f"a JSON {type(data).__name__}, not an event object")
    t = data.pop("t", 0.0)
    if isinstance(t, bool) or not isinstance(t, int | float) or not math.isfinite(t) or t < 0:
        raise BadLine(f"'t' is {t!r}, not seconds since the start")
    try:
        return float(t), from_dict(data)
    except UnknownEvent as exc:  # a newer or older event kind: play what we understand
        raise BadLine(str(exc)) from None
    except BadEvent as exc:
        raise BadLine(str(exc)) from None


def read_recording(path: str | Path) -> Iterator[tuple[float, Event]]:
    """Yield ``(t, event)`` for each good line of a recording (bad lines skipped)."""
    return iter(RecordingReader(path))


class ReplaySource(ReplayClock):
    """Play a recording with its original timing (``speed`` 2.0 = twice as fast, 0 = at once)."""

    def __init__(self, path: str | Path, speed: float = 1.0) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise UserInputError(f"no such recording: {self.path}")
        self.speed = speed
        self.name = f"replay:{self.path.name}"
        self.reader = RecordingReader(self.path)
        self._base_ts: float | None = None
        self._t0_mono: float | None = None
        self._frozen_at: float | None = None
        self.events_played = 0
        self.finished = False  # every event of the recording has been played

    @property
    def skipped(self) -> int:
        """Lines of the recording skipped so far (not well-typed events)."""
        return self.reader.skipped

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
        for t, event in self.reader:
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
        self.finished = True


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
