"""The serial console: read QEMU's serial socket, batch lines to serial.log, the tail, the boot
tracker and the subscribers."""

from __future__ import annotations

import asyncio
import socket
import time
from pathlib import Path

from envdeck.backend.agent.state import AgentState
from envdeck.backend.agent.tasks import TaskSet
from envdeck.backend.events import SerialOutput
from envdeck.backend.store import InstanceDir
from envdeck.backend.vm.serial import LineSplitter, RotatingLog, Tail

SERIAL_FLUSH_S = 0.05


class SerialConsole:
    """One instance's serial console, as lines."""

    def __init__(self, inst: InstanceDir, state: AgentState, tasks: TaskSet) -> None:
        self.inst = inst
        self.state = state
        self.tasks = tasks
        self.log = RotatingLog(inst.serial_log)
        self.tail = Tail()
        self.kernel_booted = asyncio.Event()
        self._splitter = LineSplitter()
        self._pending: list[str] = []
        self._flush_handle: asyncio.TimerHandle | None = None
        self._writer: asyncio.StreamWriter | None = None

    @property
    def socket_path(self) -> Path:
        """The serial socket QEMU serves."""
        return self.inst.root / "serial.sock"

    async def attach(self, connected: socket.socket | None = None) -> None:
        """Connect to QEMU's serial socket (it appears shortly after launch) and read it;
        ``connected``: a connection to it made already (the early launch's, :mod:`plan`)."""
        if connected is not None:
            reader, writer = await asyncio.open_unix_connection(sock=connected)
        elif (opened := await self._connect()) is not None:
            reader, writer = opened
        else:
            self.state.say("warning", "could not attach to the serial console socket")
            return
        self._writer = writer
        self.tasks.spawn(self._read(reader))

    async def _connect(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter] | None:
        """A connection to the socket once QEMU has made it (None: not within 10 s, or QEMU
        has exited)."""
        deadline = time.monotonic() + 10
        while True:
            try:
                return await asyncio.open_unix_connection(str(self.socket_path))
            except OSError:
                if time.monotonic() > deadline or self.state.exited.is_set():
                    return None
                await asyncio.sleep(0.02)

    def detach(self) -> None:
        """Drop the connection to a QEMU that is being replaced."""
        if self._writer:
            self._writer.close()
        self.kernel_booted.clear()

    def add_line(self, text: str) -> None:
        """Put a line of our own into the console (provisioning output), at once."""
        self._pending.append(text)
        self.flush()

    def flush(self) -> None:
        """Write batched serial lines to disk and subscribers (10-20 Hz while output flows)."""
        self._flush_handle = None
        lines, self._pending = self._pending, []
        if not lines:
            return
        self.log.write_lines(lines)
        self.tail.extend(lines)
        self.state.tracker.see_serial(lines)
        if "kernel booted" in self.state.tracker.done:
            self.kernel_booted.set()
        self.state.emit(SerialOutput(instance=self.inst.name, lines=lines))

    async def _read(self, reader: asyncio.StreamReader) -> None:
        while data := await reader.read(65536):
            self._pending += self._splitter.feed(data)
            if self._pending and self._flush_handle is None:
                self._flush_handle = asyncio.get_running_loop().call_later(
                    SERIAL_FLUSH_S, self.flush
                )
        self._pending += self._splitter.flush()
        self.flush()
