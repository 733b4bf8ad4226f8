"""What the agent knows and tells: the instance status, its boot stages and messages for humans.

Every change is an event: appended to events.jsonl (serial text excepted: serial.log holds it)
and handed to the listeners (the socket server's subscribers).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from envdeck.backend.events import AgentMessage, Event, InstanceStatus, SerialOutput
from envdeck.backend.vm.boot import BootTracker
from envdeck.backend.vm.serial import RotatingLog

log = logging.getLogger("envdeck.agent")


class AgentState:
    """The status, boot tracker and message history of one instance, and the event fan-out."""

    def __init__(self, status: InstanceStatus, events_log: RotatingLog) -> None:
        self.name = status.instance
        self.status = status
        self.events_log = events_log
        self.listeners: list[Callable[[Event], None]] = []
        self.messages: deque[AgentMessage] = deque(maxlen=50)
        self.tracker = BootTracker(self.name, self.emit)
        self.progress = asyncio.Event()  # set by every event: the boot walk re-checks then
        self.exited = asyncio.Event()  # QEMU has exited (the final status is set)
        self.stopping = False  # a stop was asked for: QEMU's exit is not a crash
        self.resumed = False  # this QEMU resumed a suspended guest: it did not boot

    def emit(self, event: Event) -> None:
        """Send an event to the listeners; append it to events.jsonl unless it is serial text
        (serial.log already holds that, and a flooding console must not be written twice)."""
        if not isinstance(event, SerialOutput):
            self.events_log.write_lines([event.to_json()])
        for listener in self.listeners:
            listener(event)
        self.progress.set()

    def set_status(self, **changes: Any) -> None:
        """Change the instance status and broadcast it."""
        self.status = dataclasses.replace(self.status, ts=time.time(), **changes)
        self.emit(self.status)

    def say(self, level: str, text: str) -> None:
        """A message for humans (also logged to agent.log)."""
        log.info("%s: %s", level, text)
        message = AgentMessage(instance=self.name, level=level, text=text)
        self.messages.append(message)
        self.emit(message)

    def restart_boot(self) -> None:
        """Track a new boot from its first stage (QEMU was relaunched)."""
        self.tracker = BootTracker(self.name, self.emit)

    def ssh_lost(self) -> None:
        """The guest's SSH connection dropped: a ready instance is degraded until it is back."""
        if self.status.state == "ready":
            self.set_status(
                state="degraded", reason="SSH connection to the guest lost; reconnecting"
            )

    def ssh_back(self) -> None:
        """SSH answers again: ready (unless stopping or paused)."""
        if not self.stopping and self.status.state not in ("paused", "stopping"):
            self.set_status(state="ready", reason=None)
