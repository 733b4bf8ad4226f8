"""A small wrapper over ``qemu.qmp`` (alpha upstream: keep its surface in one place)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from pathlib import Path

from qemu.qmp import QMPClient
from qemu.qmp.error import QMPError

# qemu.qmp logs every retry of a connect as an ERROR; we retry on purpose.
logging.getLogger("qemu.qmp").setLevel(logging.CRITICAL)


class Monitor:
    """One QMP connection to a running QEMU."""

    def __init__(self, name: str) -> None:
        self._client = QMPClient(name)
        self._drain: asyncio.Task[None] | None = None

    async def connect(self, path: Path, timeout: float = 10.0) -> None:
        """Connect to the QMP unix socket, retrying while QEMU creates it."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            try:
                await self._client.connect(str(path))
                break
            except (QMPError, OSError):
                if loop.time() > deadline:
                    raise
                await asyncio.sleep(0.05)
        # The client's event queue is unbounded: always drain it.
        self._drain = asyncio.create_task(self._drain_events())

    async def _drain_events(self) -> None:
        async for _event in self._client.events:
            pass

    async def status(self) -> str:
        """QEMU's run state ('running', 'paused', 'shutdown', ...)."""
        result = await self._client.execute("query-status")
        return str(result["status"])  # type: ignore[index]

    async def powerdown(self) -> None:
        """Ask the guest to power off (ACPI power button)."""
        await self._client.execute("system_powerdown")

    async def pause(self) -> None:
        """Stop the guest's vCPUs (QMP ``stop``); memory and devices stay as they are."""
        await self._client.execute("stop")

    async def resume(self) -> None:
        """Let the vCPUs run again (QMP ``cont``)."""
        await self._client.execute("cont")

    async def quit(self) -> None:
        """Tell QEMU to exit now (the guest gets no say)."""
        with contextlib.suppress(QMPError, OSError, EOFError):
            await self._client.execute("quit")

    async def close(self) -> None:
        """Disconnect (QEMU keeps running)."""
        if self._drain:
            self._drain.cancel()
        with contextlib.suppress(QMPError, OSError, EOFError, asyncio.CancelledError):
            await self._client.disconnect()
