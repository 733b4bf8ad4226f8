"""The live backend sources: the one place that knows which backend modules produce events.

A source whose module cannot be imported (a missing dependency) or that fails to construct is
left out with a notice, so the dashboard and ``envdeck record`` still run without it. Each
source's module is imported only here, when the sources are made. Every source is seen by one
stats sampler (``backend.stats``), whose resource figures follow the events they come from.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from typing import TYPE_CHECKING

from envdeck.backend.sources import Hub, Source

if TYPE_CHECKING:
    from envdeck.backend.stats.sampler import StatsSampler


def _instances() -> Source:
    from envdeck.backend.instances.source import InstancesSource

    return InstancesSource()


def _containers() -> Source:
    from envdeck.backend.containers.source import ContainersSource

    return ContainersSource()


def _processes() -> Source:
    from envdeck.backend.processes.host import ProcessSource

    source = ProcessSource(interval=1.0)
    source.prime()  # (~0.1-0.2 s with 2,000 processes, off the UI thread) its first rows go
    # out the moment it runs
    return source


@dataclass(frozen=True)
class LiveSource:
    """One live source: what it feeds (``instances``…), what the user misses without it."""

    feeds: str
    missed: str
    make: Callable[[], Source]


#: in the order they start: the process tree first (its rows are the first data a user sees;
#: its module is cheap, and it takes its first scan when made), then instances (asyncssh) and
#: containers (the docker SDK)
LIVE_SOURCES = (
    LiveSource("processes", "the process tree", _processes),
    LiveSource("instances", "instances and serial logs", _instances),
    LiveSource("containers", "containers", _containers),
)


@dataclass
class LiveSources:
    """The sources that started, what the missing ones feed, and why they are missing."""

    sources: list[Source]
    missing: set[str]
    notices: list[str]


def make_source(live: LiveSource, found: LiveSources, sampler: StatsSampler) -> Source | None:
    """Make one live source, seen by ``sampler`` (see :mod:`envdeck.backend.stats.tap`), and
    add it to ``found``; or note in ``found`` why it cannot start (and return None)."""
    from envdeck.backend.stats.tap import Tapped

    try:
        source: Source = Tapped(live.make(), sampler)
    except ModuleNotFoundError as exc:
        found.missing.add(live.feeds)
        found.notices.append(f"{live.missed}: needs {exc.name} (not installed)")
        return None
    except Exception as exc:  # noqa: BLE001 - one broken source must not stop the others
        found.missing.add(live.feeds)
        found.notices.append(f"{live.missed}: failed to start: {exc}")
        return None
    found.sources.append(source)
    return source


def live_sources() -> LiveSources:
    """Make every live source; explain each one that cannot start."""
    from envdeck.backend.stats.sampler import StatsSampler

    found = LiveSources([], set(), [])
    sampler = StatsSampler()
    for live in LIVE_SOURCES:
        make_source(live, found, sampler)
    return found


class LiveStart:
    """The dashboard's live sources, made off the UI thread from the moment it starts.

    The process tree comes first: a thread started here imports it and takes its first scan
    while Textual builds the screen, so its rows can be in the first frame. The others import
    asyncssh and the docker SDK (~0.2 s that holds the GIL): :meth:`start_rest` makes them
    once the caller has shown those rows.
    """

    def __init__(self) -> None:
        self.found = LiveSources([], set(), [])
        self._first: Future[tuple[Source | None, StatsSampler]] = Future()
        threading.Thread(target=self._make_first, name="envdeck-live-first", daemon=True).start()

    def _make_first(self) -> None:
        try:
            from envdeck.backend.stats.sampler import StatsSampler

            sampler = StatsSampler()
            self._first.set_result((make_source(LIVE_SOURCES[0], self.found, sampler), sampler))
        except BaseException as exc:  # (handed to whoever awaits the first source)
            self._first.set_exception(exc)

    @property
    def first_ready(self) -> bool:
        """The first source is made (its first scan taken) and waits to be started."""
        return (
            self._first.done()
            and not self._first.exception()
            and self._first.result()[0] is not None
        )

    async def start_first(self, hub: Hub) -> bool:
        """Start the first source on ``hub`` as soon as it exists; False if it could not."""
        source, _sampler = await asyncio.wrap_future(self._first)
        if source is not None:
            hub.add(source)
        return source is not None

    async def start_rest(self, hub: Hub) -> LiveSources:
        """Make the other sources, each in a worker thread, and start each on ``hub`` as it
        comes; what started, what the missing ones feed and why they are missing."""
        _source, sampler = await asyncio.wrap_future(self._first)
        for live in LIVE_SOURCES[1:]:
            source = await asyncio.to_thread(make_source, live, self.found, sampler)
            if source is not None:
                hub.add(source)
        return self.found
