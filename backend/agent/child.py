"""QEMU as the machine sees it: a child process (:func:`plan.spawn_qemu`, launched early from
the plan or by the machine) it can wait for without a thread, and kill."""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess


class ChildProcess:
    """A :class:`subprocess.Popen` child, awaited through a pidfd (no thread, no polling)."""

    def __init__(self, popen: subprocess.Popen[bytes]) -> None:
        self._popen = popen
        self._exited: asyncio.Future[int] | None = None

    @property
    def pid(self) -> int:
        return self._popen.pid

    @property
    def returncode(self) -> int | None:
        return self._popen.poll()

    def kill(self) -> None:
        if self._popen.poll() is None:
            self._popen.kill()

    async def wait(self) -> int:
        """Its exit status, as Popen reports it (negative: the signal that ended it)."""
        if self._exited is None:
            self._exited = asyncio.ensure_future(self._wait())
        return await asyncio.shield(self._exited)

    async def _wait(self) -> int:
        if (code := self._popen.poll()) is not None:
            return code
        with contextlib.suppress(ProcessLookupError):  # (gone: wait() reaps it at once)
            await process_exit(self._popen.pid)
        return self._popen.wait()


async def process_exit(pid: int) -> None:
    """Wait for process ``pid`` to exit, through a pidfd (no polling; it need not be our child).
    ProcessLookupError: there is no such process."""
    loop = asyncio.get_running_loop()
    fd = os.pidfd_open(pid)
    done: asyncio.Future[None] = loop.create_future()

    def exited() -> None:
        if not done.done():
            done.set_result(None)

    loop.add_reader(fd, exited)
    try:
        await done
    finally:
        loop.remove_reader(fd)
        os.close(fd)
