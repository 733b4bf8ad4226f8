"""The live backend sources: the one place that knows which backend modules produce events.

A source whose module cannot be imported (a missing dependency) or that fails to construct is
left out with a notice, so the dashboard and ``envdeck record`` still run without it. Each
source's module is imported only here, when the sources are made. Every source is seen by one
stats sampler (``backend.stats``), whose resource figures follow the events they come from.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
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

    return ProcessSource(interval=1.0)


@dataclass(frozen=True)
class LiveSource:
    """One live source: what it feeds (``instances``…), what the user misses without it."""

    feeds: str
    missed: str
    make: Callable[[], Source]


#: in the order they start: the process tree first (its rows are the first data a user sees;
#: its module is cheap), then instances (asyncssh) and containers (the docker SDK)
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


async def start_live_sources(hub: Hub) -> LiveSources:
    """Make the live sources and start each on ``hub`` as soon as it exists.

    Each is made in a worker thread (their modules import asyncssh and the docker SDK, ~0.2 s
    in all), so a dashboard paints its first frame and its first process rows without waiting
    for the slower imports.
    """
    from envdeck.backend.stats.sampler import StatsSampler

    found = LiveSources([], set(), [])
    sampler = StatsSampler()
    for live in LIVE_SOURCES:
        source = await asyncio.to_thread(make_source, live, found, sampler)
        if source is not None:
            hub.add(source)
    return found
