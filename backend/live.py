"""The live backend sources: the one place that knows which backend modules produce events.

A source whose module cannot be imported (a missing dependency) or that fails to construct is
left out with a notice, so the dashboard and ``envdeck record`` still run without it. Each
source's module is imported only here, when the sources are made. Every source is seen by one
stats sampler (``backend.stats``), whose resource figures follow the events they come from.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from envdeck.backend.sources import Source


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


LIVE_SOURCES = (
    LiveSource("instances", "instances and serial logs", _instances),
    LiveSource("containers", "containers", _containers),
    LiveSource("processes", "the process tree", _processes),
)


@dataclass
class LiveSources:
    """The sources that started, what the missing ones feed, and why they are missing."""

    sources: list[Source]
    missing: set[str]
    notices: list[str]


def live_sources() -> LiveSources:
    """Make every live source; explain each one that cannot start."""
    found = LiveSources([], set(), [])
    for live in LIVE_SOURCES:
        try:
            found.sources.append(live.make())
        except ModuleNotFoundError as exc:
            found.missing.add(live.feeds)
            found.notices.append(f"{live.missed}: needs {exc.name} (not installed)")
        except Exception as exc:  # noqa: BLE001 - one broken source must not stop the others
            found.missing.add(live.feeds)
            found.notices.append(f"{live.missed}: failed to start: {exc}")
    from envdeck.backend.stats.tap import tap_sources

    found.sources = tap_sources(found.sources)
    return found
