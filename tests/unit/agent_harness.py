"""A real agent serving its socket, with no QEMU behind it: for tests of the socket and commands."""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

from envdeck.backend.agent.daemon import Agent
from envdeck.backend.agent.timings import Timings
from envdeck.backend.config import InstanceConfig, render_config
from envdeck.backend.store import InstanceDir, write_atomic


@contextlib.asynccontextmanager
async def agent_without_qemu() -> AsyncIterator[Agent]:
    """An :class:`Agent` for instance ``quiet`` (state 'starting'), listening on its agent.sock.

    The directory is short and under /tmp: a unix socket path must fit in 108 bytes."""
    root = Path(tempfile.mkdtemp(prefix="envdeck-agent-", dir="/tmp"))
    inst = InstanceDir("quiet", root / "quiet")
    inst.create()
    defaults = InstanceConfig()
    write_atomic(
        inst.config,
        render_config(
            template="tiny",
            arch=defaults.arch,
            cpus=defaults.cpus,
            memory_bytes=defaults.memory_bytes,
            disk_bytes=defaults.disk_bytes,
            accel=defaults.accel,
        ),
    )
    agent = Agent(inst, Timings())
    await agent.server.start()
    try:
        yield agent
    finally:
        await agent.close()
        shutil.rmtree(root, ignore_errors=True)
