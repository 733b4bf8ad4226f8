"""TaskSet: background tasks stay referenced until done, and end on shutdown."""

from __future__ import annotations

import asyncio

from envdeck.backend.agent.tasks import TaskSet


async def test_a_finished_task_is_dropped():
    tasks = TaskSet()
    task = tasks.spawn(asyncio.sleep(0, result="done"))
    assert len(tasks) == 1
    assert await task == "done"
    await asyncio.sleep(0)  # done callbacks run on the next loop turn
    assert len(tasks) == 0


async def test_cancel_ends_running_tasks_and_waits_for_them():
    tasks = TaskSet()
    ended: list[str] = []

    async def forever() -> None:
        try:
            await asyncio.Event().wait()
        finally:
            ended.append("cleaned up")

    task = tasks.spawn(forever())
    await asyncio.sleep(0)
    await tasks.cancel()
    assert task.cancelled() and ended == ["cleaned up"]
