"""The instance behind an ``instance:NAME`` docker endpoint, followed through its agent.

That endpoint's socket is a forward over SSH, so the daemon's events stream cannot tell what
happened to the guest: while it is paused the forward hangs (no error, no event, until SSH's
keepalives give up) and while SSH is down each connection is cut at once, which reads like a
daemon that stopped. The agent knows, and pushes every status change to its subscribers;
:class:`InstanceFollower` keeps the latest one so the endpoint's watcher can say why (and not
dial a frozen guest), and calls ``changed`` so it reconnects as soon as the instance is back.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

from envdeck.backend.events import InstanceStatus
from envdeck.backend.store import InstanceDir

#: states in which the guest cannot answer: the watcher waits for the next status, not dialling
HELD = ("paused", "stopping")


def _key(status: InstanceStatus | None) -> tuple[str, str | None] | None:
    return (status.state, status.reason) if status else None


class InstanceFollower:
    """The latest status of one instance (None while its agent does not answer)."""

    def __init__(self, name: str, changed: Callable[[], None], retry: float = 2.0) -> None:
        self.name = name
        self.status: InstanceStatus | None = None
        self._changed = changed
        self._retry = retry

    def held(self) -> str | None:
        """Why the forward cannot answer now (paused or stopping), else None."""
        state = self.status.state if self.status else None
        if state == "paused":
            return f"instance paused (envdeck resume {self.name})"
        if state in HELD:
            return f"instance {state}"
        return None

    def reason(self) -> str | None:
        """The instance's own account of a failed connection (it is not ready: degraded with
        SSH down, still booting...), or None when it is ready or its agent does not answer."""
        if self.status is None or self.status.state == "ready":
            return None
        said = f": {self.status.reason}" if self.status.reason else ""
        return f"instance {self.status.state}{said}"

    def _set(self, status: InstanceStatus | None) -> None:
        before, self.status = self.status, status
        if _key(status) != _key(before):
            self._changed()

    async def run(self) -> None:
        """Follow the agent's status events; reconnect every ``retry`` s while it is away."""
        from envdeck.backend.agent.client import AgentClient

        sock = InstanceDir.of(self.name).agent_sock
        while True:
            # Any failure (no agent, a broken reply) means: status unknown, try again later; a
            # stale "paused" would hold the watcher for good.
            with contextlib.suppress(Exception):
                client = await AgentClient.connect(sock)
                try:
                    self._set(await client.subscribe(backlog=0))
                    async for event in client.events():
                        if isinstance(event, InstanceStatus):
                            self._set(event)
                finally:
                    await client.close()
            self._set(None)
            await asyncio.sleep(self._retry)
