"""Background tasks that are referenced until done (asyncio keeps only weak references), and
values built once, when first needed, by an async factory."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, Generic, TypeVar

T = TypeVar("T")


class TaskSet:
    """Running tasks, each dropped when it finishes; :meth:`cancel` ends the rest."""

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[Any]] = set()

    def spawn(self, coro: Coroutine[Any, Any, T]) -> asyncio.Task[T]:
        """Run ``coro`` as a task held here until it is done."""
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def __len__(self) -> int:
        return len(self._tasks)

    async def cancel(self) -> None:
        """Cancel every running task and wait for them to end."""
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


class Later(Generic[T]):
    """A value built by ``factory`` at the first :meth:`get` (callers meanwhile share that one
    build); :attr:`now` is the value once built, else None."""

    def __init__(self, factory: Callable[[], Awaitable[T]]) -> None:
        self._factory = factory
        self._building: asyncio.Future[T] | None = None
        self.now: T | None = None

    async def get(self) -> T:
        """The value, built now if no one asked before."""
        if self._building is None:
            self._building = asyncio.ensure_future(self._build())
        return await asyncio.shield(self._building)

    async def _build(self) -> T:
        self.now = await self._factory()
        return self.now
