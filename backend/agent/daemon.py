"""The per-instance agent: a detached asyncio daemon that owns one instance's QEMU.

``python -m envdeck.backend.agent NAME`` (what ``envdeck start`` spawns). It holds the
instance's lock for its whole life, launches QEMU (or adopts a QEMU left running by an agent
that died), streams the serial console to a rotating log and to its clients, tracks the boot
stages, holds the SSH connection, and serves clients on ``agent.sock`` (owner only). It exits
when QEMU has exited, leaving the final state (stopped or crashed, with the reason) in
``state.json``.

The parts: :mod:`state` (status and events), :mod:`console` (serial), :mod:`machine` (QEMU),
:mod:`readiness` (boot stages, SSH, provisioning), :mod:`server` (the socket) and
:mod:`commands` (what each request does). This module wires them together.

QEMU's launch comes first: :mod:`entry` takes the lock and launches the last start's QEMU
(:mod:`plan`) before this module is imported, and nothing on the usual launch's way imports
asyncssh or the forwards. Those, with the readiness walk (:mod:`guestside`), are imported in a
thread once QEMU runs, while the guest boots.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import logging.handlers
import os
import signal
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from envdeck.backend.agent.commands import Commands
from envdeck.backend.agent.console import SerialConsole
from envdeck.backend.agent.diskspace import DiskWatch
from envdeck.backend.agent.machine import Machine
from envdeck.backend.agent.plan import EarlyLaunch
from envdeck.backend.agent.server import AgentServer
from envdeck.backend.agent.state import AgentState
from envdeck.backend.agent.tasks import Later, TaskSet
from envdeck.backend.agent.timings import Timings
from envdeck.backend.config import InstanceConfig
from envdeck.backend.errors import EnvdeckError
from envdeck.backend.events import InstanceStatus
from envdeck.backend.instances import files as instance_files
from envdeck.backend.ssh.link import GuestLink
from envdeck.backend.store import InstanceDir
from envdeck.backend.vm.serial import RotatingLog

if TYPE_CHECKING:  # imported while QEMU boots (see guestside)
    from envdeck.backend.agent.guestside import GuestSide

log = logging.getLogger("envdeck.agent")


class Agent:
    """One instance's agent: its parts, and their life from start to QEMU's exit."""

    def __init__(
        self, inst: InstanceDir, timings: Timings, early: EarlyLaunch | None = None
    ) -> None:
        self.inst = inst
        cfg = instance_files.load(inst)
        status = InstanceStatus(
            instance=inst.name,
            state="starting",
            arch=cfg.arch,
            cpus=cfg.cpus,
            memory_bytes=cfg.memory_bytes,
            disk_bytes=cfg.disk_bytes,
        )
        self.tasks = TaskSet()
        self.state = AgentState(status, RotatingLog(inst.events_log, max_bytes=2 << 20, keep=1))
        self.console = SerialConsole(inst, self.state, self.tasks)
        self.link = GuestLink(inst, self.state.say, self.state.ssh_lost, self.state.ssh_back)
        self.machine = Machine(
            inst, cfg, self.state, self.console, self.link, timings, self.tasks, early
        )
        self.guest: Later[GuestSide] = Later(lambda: self._build_guest_side(cfg, timings))
        commands = Commands(inst, self.state, self.console, self.machine, self.guest)
        self.server = AgentServer(inst.agent_sock, commands.table())
        self.disk = DiskWatch(self.state, inst.root, [self.state.events_log, self.console.log])
        self.state.listeners.append(self.server.publish)

    async def run(self) -> int:
        """Serve, launch or adopt QEMU, boot, and live until QEMU exits."""
        await self.server.start()
        stop_requested = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop_requested.set)
        self.tasks.spawn(self._stop_on(stop_requested))
        self.tasks.spawn(self.disk.run())
        self.tasks.spawn(self._build_guest_side_once_spawned())
        try:
            await self.machine.start()
            if not self.state.exited.is_set():  # (QEMU may die as it starts)
                await (await self.guest.get()).readiness.wait_ready()
            await self.state.exited.wait()
        except EnvdeckError as exc:
            self.state.say("error", str(exc))
            if not self.state.exited.is_set():
                await self.machine.abort(exc.message)
        except Exception as exc:
            log.exception("agent failed")
            self.state.say("error", f"agent failed: {type(exc).__name__}: {exc}")
            if not self.state.exited.is_set():
                await self.machine.abort(f"agent failed: {exc}")
        finally:
            await asyncio.sleep(0.1)  # let clients read the final status
            await self.close()
        return 0 if self.state.status.state == "stopped" else 1

    async def close(self) -> None:
        """Hang up on clients, end background work, close SSH, QMP and the logs."""
        await self.server.close()
        await self.tasks.cancel()
        if self.guest.now is not None:
            await self.guest.now.forwards.close()
        await self.link.close()
        await self.machine.close()
        self.console.log.close()
        self.state.events_log.close()

    async def _stop_on(self, requested: asyncio.Event) -> None:
        await requested.wait()
        await self.machine.stop()

    async def _build_guest_side_once_spawned(self) -> None:
        """Import the guest side while QEMU starts and the guest boots, not before the launch
        (a failure is raised where :meth:`run` waits for it)."""
        await self.machine.spawned.wait()
        with contextlib.suppress(Exception):
            await self.guest.get()

    async def _build_guest_side(self, cfg: InstanceConfig, timings: Timings) -> GuestSide:
        """The forwards and the readiness walk; their modules are imported in a thread."""
        build = await asyncio.to_thread(_guest_side_builder)
        return build(self.inst, cfg, self.state, self.console, self.link, timings, self.tasks)


def _guest_side_builder() -> Callable[..., GuestSide]:
    """(thread) Import the guest side (asyncssh, forwards, readiness): its builder."""
    from envdeck.backend.agent.guestside import GuestSide

    return GuestSide.build


AGENT_LOG_BYTES = 1 << 20  # agent.log is rotated at 1 MiB, keeping one old file


class AgentLogHandler(logging.handlers.RotatingFileHandler):
    """agent.log: owner only, size-capped. The agent's stdout and stderr (where the CLI pointed
    them, for errors before logging is set up) follow it to the new file on each rotation."""

    def _open(self) -> Any:
        fd = os.open(self.baseFilename, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        os.fchmod(fd, 0o600)
        return os.fdopen(fd, "a", encoding=self.encoding or "utf-8")

    def doRollover(self) -> None:
        super().doRollover()
        if self.stream is not None:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(self.stream.fileno(), 1)
            os.dup2(self.stream.fileno(), 2)


def setup_logging(inst: InstanceDir) -> None:
    """The agent logs to agent.log at INFO; asyncssh (a few lines per SSH command: the guest
    is polled every second) only says warnings, unless ENVDECK_DEBUG is set."""
    debug = bool(os.environ.get("ENVDECK_DEBUG"))
    handler = AgentLogHandler(inst.agent_log, maxBytes=AGENT_LOG_BYTES, backupCount=1)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    logging.basicConfig(level=logging.INFO, handlers=[handler])
    logging.getLogger("asyncssh").setLevel(logging.INFO if debug else logging.WARNING)


async def _serve(inst: InstanceDir, timings: Timings, early: EarlyLaunch | None) -> int:
    """Run the agent; a broken instance file ends it at once (the CLI that started it reports
    the error with its position, having checked the same file meanwhile)."""
    try:
        agent = Agent(inst, timings, early)
    except EnvdeckError as exc:
        log.error("not started: %s", exc)
        return 2
    return await agent.run()


def serve(inst: InstanceDir, early: EarlyLaunch | None = None) -> int:
    """Run the agent for ``inst`` (its lock held by the caller, :func:`entry.main`); ``early``:
    a QEMU launched from the last start's plan, for the machine to adopt or kill."""
    setup_logging(inst)
    return asyncio.run(_serve(inst, Timings.from_env(), early))


__all__ = ["Agent", "serve", "setup_logging"]
