"""Let the stats sampler see the events of the live sources on their way to the hub."""

from __future__ import annotations

from typing import Any

from envdeck.backend.events import Event
from envdeck.backend.sources import Emit, Source
from envdeck.backend.stats.sampler import StatsSampler


class Tapped:
    """A source whose events also go through a sampler; the figures follow right behind."""

    def __init__(self, inner: Source, sampler: StatsSampler) -> None:
        self.inner = inner
        self.name = inner.name
        self.sampler = sampler

    async def run(self, emit: Emit) -> None:
        """Run the inner source; after each of its events, emit the figures it completed."""
        see = self.sampler.see

        def tapped(event: Event) -> None:
            emit(event)
            for figures in see(event):
                emit(figures)

        await self.inner.run(tapped)

    def __getattr__(self, name: str) -> Any:
        # Capabilities (poke) are the inner source's.
        return getattr(self.inner, name)
