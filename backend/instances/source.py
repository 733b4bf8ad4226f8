"""The instances feed for the dashboard: every instance's status, stages, serial and messages.

For each instance with a live agent, relay the agent's event stream (with its backlog); for the
others, emit the on-disk truth (stopped, crashed with its reason, or an orphaned QEMU). The
instances folder has no event stream, so it is rescanned every ``rescan_s`` seconds (a few
stat calls) or at once after :meth:`poke` — e.g. right after the user starts an instance.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from envdeck.backend.agent.client import AgentClient
from envdeck.backend.agent.protocol import AgentUnavailable
from envdeck.backend.containers.endpoints import instance_container_names
from envdeck.backend.errors import EnvdeckError
from envdeck.backend.events import InstanceStatus, ProcessesUnavailable
from envdeck.backend.instances.api import agent_running, offline_status
from envdeck.backend.processes.guest import GuestProcessSource
from envdeck.backend.sources import Emit
from envdeck.backend.ssh import client as ssh
from envdeck.backend.store import InstanceDir, list_instances

GUEST_RUNNING = ("ready", "degraded")


class InstancesSource:
    """Source of InstanceStatus / BootStage / SerialOutput / AgentMessage for all instances."""

    name = "instances"

    def __init__(self, rescan_s: float = 2.0, serial_backlog: int = 500) -> None:
        self.rescan_s = rescan_s
        self.serial_backlog = serial_backlog
        self._relays: dict[str, asyncio.Task[None]] = {}
        self._guests: dict[str, asyncio.Task[None]] = {}
        self._offline: dict[str, InstanceStatus] = {}
        self._known: set[str] = set()  # every instance this feed has reported, live or not
        self._poke = asyncio.Event()

    def poke(self) -> None:
        """Rescan now (after an action that starts or removes an instance)."""
        self._poke.set()

    async def run(self, emit: Emit) -> None:
        """Rescan and relay until cancelled."""
        try:
            while True:
                await asyncio.to_thread(self._scan_blocking_parts)
                self._scan(emit)
                self._poke.clear()
                # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow a cancel that
                # arrives as the event fires, and the source would never stop.
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self.rescan_s):
                        await self._poke.wait()
        finally:
            for task in [*self._relays.values(), *self._guests.values()]:
                task.cancel()

    def _scan_blocking_parts(self) -> None:
        """Disk and /proc reads happen here, off the event loop."""
        self._names = list_instances()
        self._live = {name for name in self._names if agent_running(InstanceDir.of(name))}
        self._statuses = {
            name: offline_status(InstanceDir.of(name))
            for name in self._names
            if name not in self._live
        }

    def _scan(self, emit: Emit) -> None:
        for name in list(self._relays):
            if self._relays[name].done():
                del self._relays[name]
        for name in self._live:
            if name not in self._relays:
                self._offline.pop(name, None)
                self._relays[name] = asyncio.create_task(self._relay(name, emit))
        for name, status in self._statuses.items():
            if name in self._relays:
                continue
            previous = self._offline.get(name)
            if previous is None or (previous.state, previous.reason, previous.pid) != (
                status.state,
                status.reason,
                status.pid,
            ):
                self._offline[name] = status
                emit(status)
        # Gone from disk, whether it was shown from disk or through its agent (a running
        # instance deleted with --force: its agent ends as the directory goes).
        for gone in self._known - set(self._names):
            self._offline.pop(gone, None)
            if (relay := self._relays.pop(gone, None)) is not None:
                relay.cancel()
            if (guest := self._guests.pop(gone, None)) is not None:
                guest.cancel()
            emit(InstanceStatus(instance=gone, state="deleted"))
        self._known = set(self._names)

    async def _relay(self, name: str, emit: Emit) -> None:
        inst = InstanceDir.of(name)
        try:
            client = await AgentClient.connect(inst.agent_sock, timeout=2)
        except (AgentUnavailable, EnvdeckError):
            return
        try:
            await client.subscribe(backlog=self.serial_backlog)
            async for event in client.events():
                emit(event)
                if isinstance(event, InstanceStatus):
                    self._track_guest(event, emit)
        except (AgentUnavailable, EnvdeckError, TimeoutError):
            pass
        finally:
            await client.close()
            self._stop_guest(name, emit, "the instance is not running")
            self.poke()  # the agent ended: report the on-disk truth now

    # --- guest process trees ----------------------------------------------------------------

    def _track_guest(self, status: InstanceStatus, emit: Emit) -> None:
        """Walk the guest's processes while it runs; stop when it does not."""
        task = self._guests.get(status.instance)
        if status.state in GUEST_RUNNING and status.ssh_port:
            if task is None or task.done():
                self._guests[status.instance] = asyncio.create_task(
                    self._guest_processes(status.instance, status.ssh_port, emit)
                )
        elif task is not None:
            self._stop_guest(status.instance, emit, f"the instance is {status.state}")

    def _stop_guest(self, name: str, emit: Emit, reason: str) -> None:
        task = self._guests.pop(name, None)
        if task is not None:
            task.cancel()
            emit(ProcessesUnavailable(host=name, reason=reason))

    async def _guest_processes(self, name: str, port: int, emit: Emit) -> None:
        """GuestProcessSource over our own pinned SSH connection, reconnected when it drops."""
        inst = InstanceDir.of(name)
        held: dict[str, Any] = {}

        async def run_command(script: str) -> str:
            if held.get("conn") is None:
                held["conn"] = await ssh.connect(inst, port, timeout=10)
            try:
                result = await held["conn"].run(script, check=False, errors="replace")
            except Exception:
                held.pop("conn").close()
                raise
            return str(result.stdout or "")

        try:
            names = instance_container_names(name)  # a container's processes show its name
            await GuestProcessSource(name, run_command, container_name=names).run(emit)
        finally:
            if held.get("conn") is not None:
                held["conn"].close()
