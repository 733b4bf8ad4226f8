"""A small wrapper over ``qemu.qmp`` (alpha upstream: keep its surface in one place)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from pathlib import Path
from typing import Any

from qemu.qmp import QMPClient
from qemu.qmp.error import QMPError

#: migration speed cap while saving to a local file (QEMU's default, 32 MiB/s, is for networks)
SAVE_BANDWIDTH = 8 << 30


class MonitorError(Exception):
    """QEMU refused or failed a monitor operation (the message says what and why)."""


# qemu.qmp logs every retry of a connect as an ERROR; we retry on purpose.
logging.getLogger("qemu.qmp").setLevel(logging.CRITICAL)


class Monitor:
    """One QMP connection to a running QEMU."""

    def __init__(self, name: str) -> None:
        self._client = QMPClient(name)
        self._drain: asyncio.Task[None] | None = None

    async def connect(
        self, path: Path, timeout: float = 10.0, gone: asyncio.Event | None = None
    ) -> None:
        """Connect to the QMP unix socket, retrying while QEMU creates it; ``gone``: set when
        that QEMU has exited (no socket will come: ConnectionError at once)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            try:
                await self._client.connect(str(path))
                break
            except (QMPError, OSError):
                if gone is not None and gone.is_set():
                    raise ConnectionError("QEMU exited before its monitor answered") from None
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

    async def _query(self, command: str) -> dict[str, Any]:
        """A QMP command whose answer is an object."""
        result = await self._client.execute(command)
        return result if isinstance(result, dict) else {}

    async def version(self) -> tuple[int, int, int, str]:
        """The running QEMU's version: major, minor, micro and its package string."""
        result = await self._query("query-version")
        qemu = result["qemu"]
        return int(qemu["major"]), int(qemu["minor"]), int(qemu["micro"]), str(result["package"])

    async def save(self, uri: str, timeout: float = 600.0) -> None:
        """Write the machine's state through ``uri`` (QMP ``migrate``; pause the guest first for
        a consistent, single-pass stream) and wait until QEMU says it is complete."""
        await self._client.execute("migrate-set-parameters", {"max-bandwidth": SAVE_BANDWIDTH})
        await self._client.execute("migrate", {"uri": uri})
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            info = await self._query("query-migrate")
            status = info.get("status")
            if status == "completed":
                return
            if status in ("failed", "cancelled"):
                desc = info.get("error-desc", status)
                raise MonitorError(f"QEMU could not save the machine: {desc}")
            if loop.time() > deadline:
                with contextlib.suppress(QMPError):
                    await self._client.execute("migrate_cancel")
                raise MonitorError(f"saving the machine took over {timeout:.0f}s")
            await asyncio.sleep(0.02)

    async def wait_loaded(self, timeout: float = 600.0) -> None:
        """Wait until an incoming machine state is loaded, then let the guest run (a guest saved
        while paused comes back paused: it is continued)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while (status := await self.status()) in ("inmigrate", "prelaunch"):
            if loop.time() > deadline:
                raise MonitorError(f"loading the saved machine took over {timeout:.0f}s")
            await asyncio.sleep(0.02)
        if status == "paused":
            await self.resume()
        elif status != "running":
            raise MonitorError(f"QEMU did not load the saved machine (it is {status})")

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
