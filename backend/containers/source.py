"""Live containers of every Docker endpoint, driven by the daemons' events streams.

:class:`ContainersSource` (a :class:`~envdeck.backend.sources.Source`) runs one
:class:`EndpointWatcher` per endpoint. A watcher, per connection:

1. opens the events stream (its own thread and client, see :mod:`docker_events`),
2. emits ``EndpointStatus(reachable=True)`` and one ``ContainerInfo`` per container (one sparse
   list request), plus ``ContainerRemoved`` for rows it had shown that are gone,
3. then, for each batch of events, re-reads just the containers they name (one list request
   filtered by id) and emits their rows, or ``ContainerRemoved`` on ``destroy``;
4. after ``refresh_interval`` (60 s) without events, lists once more and emits only the rows that
   changed: docker's status text is relative ("Up 5 minutes"), and a hung daemon is noticed.

When the stream ends (the daemon stopped: the socket closes at once) the endpoint is reported
unreachable with the reason, and the watcher retries every ``retry_max`` seconds at most; it
recovers by itself. While unreachable, rows already emitted are kept (shown greyed by the UI);
the next full list replaces them. Blocking SDK calls run in threads, never on the event loop.

An ``instance:NAME`` endpoint is a socket forward over SSH, which cannot tell a paused guest (the
stream just hangs) or a lost SSH connection (each connection is cut) from a dead daemon. Its
watcher also follows the instance's status through the agent (:mod:`instance_follow`): a paused
or stopping instance ends the session and reads "instance paused" until its next status (no
dialling a frozen guest), a failed connection is explained by the instance's state ("instance
degraded: SSH connection to the guest lost; reconnecting"), and the watcher reconnects as soon
as the instance is ready again.

The one-off operations (list, actions, logs, shell, stats) live in :mod:`containers_actions`
and are re-exported here.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any

from envdeck.backend.containers.actions import (
    ACTIONS,
    LogStream,
    container_action,
    list_containers,
    logs,
    shell_argv,
    stats,
)
from envdeck.backend.containers.endpoints import (
    Endpoint,
    discover,
    make_client,
    resolve,
    unreachable_reason,
)
from envdeck.backend.containers.event_stream import EventStream
from envdeck.backend.containers.instance_follow import InstanceFollower
from envdeck.backend.containers.platform import PlatformCache, normalize_arch
from envdeck.backend.containers.rows import plan_batch, to_info
from envdeck.backend.events import ContainerInfo, ContainerRemoved, EndpointStatus
from envdeck.backend.sources import Emit

__all__ = [
    "ACTIONS",
    "ContainersSource",
    "EndpointWatcher",
    "LogStream",
    "container_action",
    "list_containers",
    "logs",
    "shell_argv",
    "stats",
]


class EndpointWatcher:
    """Keeps one endpoint's containers live; runs until cancelled."""

    def __init__(
        self,
        endpoint: Endpoint,
        emit: Emit,
        *,
        retry_max: float = 2.0,
        refresh_interval: float = 60.0,
        subscribe_timeout: float = 5.0,
    ) -> None:
        self.endpoint = endpoint
        self._emit = emit
        self._retry_max = retry_max
        self._refresh_interval = refresh_interval
        self._subscribe_timeout = subscribe_timeout
        self._client: Any = None
        self._platforms: PlatformCache | None = None
        self._native: str | None = None
        self._shown: dict[str, tuple] = {}  # id -> what was last emitted for it
        self._status: tuple[bool, str | None] | None = None
        self._wake = asyncio.Event()  # set on each status change of the endpoint's instance
        self._interrupt: Callable[[tuple[str, Any]], None] | None = None  # ends the session
        self._instance = (
            InstanceFollower(endpoint.name.split(":", 1)[1], self._instance_changed, retry_max)
            if endpoint.name.startswith("instance:")
            else None
        )
        self.list_requests = 0  # how many list requests were made (tests, benchmarks)
        self.connections = 0  # how many times the endpoint was reached

    async def run(self) -> None:
        """Connect, follow, report, retry; forever (cancel to stop)."""
        follower = None
        if self._instance is not None:
            follower = asyncio.create_task(self._instance.run(), name=f"{self.endpoint.name}:agent")
        delay = 0.25
        try:
            while True:
                self._wake.clear()
                held = self._instance.held() if self._instance else None
                if held is not None:  # a frozen guest: say so, wait for its next status
                    self._set_status(False, held)
                    await self._wake.wait()
                    continue
                connected = False
                try:
                    connected, reason = await self._session()
                except asyncio.CancelledError:
                    raise
                except Exception as exc:  # noqa: BLE001 - any failure: report, retry
                    reason = unreachable_reason(self.endpoint, exc)
                if self._instance is not None:
                    reason = self._instance.held() or self._instance.reason() or reason
                self._set_status(False, reason)
                delay = 0.25 if connected else min(delay * 2, self._retry_max)
                with contextlib.suppress(TimeoutError):  # (an instance status change: at once)
                    async with asyncio.timeout(delay):
                        await self._wake.wait()
        finally:
            if follower is not None:
                follower.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await follower
            if self._client is not None:
                self._client.close()
                self._client = None

    def _instance_changed(self) -> None:
        """The instance's status changed: end a session its paused guest would hang, and cut
        the retry wait short (back: reconnect now; degraded: report why)."""
        self._wake.set()
        held = self._instance.held() if self._instance else None
        if held is not None and self._interrupt is not None:
            self._interrupt(("end", held))

    def _set_status(self, reachable: bool, reason: str | None) -> None:
        if self._status == (reachable, reason):
            return
        self._status = (reachable, reason)
        self._emit(
            EndpointStatus(
                endpoint=self.endpoint.name,
                reachable=reachable,
                reason=reason,
                native_arch=self._native,
                docker_host=self.endpoint.url,
            )
        )

    def _connect(self) -> None:
        """(thread) The request client and the daemon's native arch."""
        if self._client is None:
            client = make_client(self.endpoint, timeout=5)
            self._client = client
            self._platforms = PlatformCache(client.api.inspect_image)
        self._native = normalize_arch(self._client.info().get("Architecture"))

    def _rows(self, ids: list[str] | None) -> list[ContainerInfo]:
        """(thread) One list request (all containers, or just ``ids``) -> rows.

        For ``ids`` (after events), each container is inspected first: dockerd logs some events
        (pause, unpause) before its list view is updated, but only while it holds the container's
        lock, which an inspect waits for. So the list that follows is current.
        """
        import docker

        for cid in ids or []:
            with contextlib.suppress(docker.errors.NotFound):
                self._client.api.inspect_container(cid)
        filters = {"id": ids} if ids else None
        self.list_requests += 1
        entries = self._client.api.containers(all=True, filters=filters)
        assert self._platforms is not None
        return [
            to_info(
                self.endpoint.name, attrs, self._platforms.get(attrs.get("ImageID")), self._native
            )
            for attrs in entries
        ]

    async def _session(self) -> tuple[bool, str]:
        """One connection's life: returns (was connected, why it ended)."""
        await asyncio.to_thread(self._connect)
        queue: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
        stream = EventStream(
            self.endpoint,
            asyncio.get_running_loop(),
            queue.put_nowait,
            version=self._client.api.api_version,
        ).start()
        self._interrupt = queue.put_nowait
        try:
            async with asyncio.timeout(self._subscribe_timeout):
                tag, payload = await queue.get()
            if tag == "end":
                return False, payload
            rows = await asyncio.to_thread(self._rows, None)
            self.connections += 1
            self._set_status(True, None)
            self._publish(rows, full=True)
            while True:
                try:
                    async with asyncio.timeout(self._refresh_interval):
                        item = await queue.get()
                except TimeoutError:
                    # Quiet for a while: refresh docker's relative status texts ("Up 5 minutes")
                    # and notice a hung (not closed) daemon. Only changed rows are emitted.
                    rows = await asyncio.to_thread(self._rows, None)
                    self._publish(rows, full=True, only_changed=True)
                    continue
                batch = [item]
                while not queue.empty():
                    batch.append(queue.get_nowait())
                ended = await self._apply(batch)
                if ended is not None:
                    return True, ended
        finally:
            self._interrupt = None
            await stream.aclose()

    async def _apply(self, batch: list[tuple[str, Any]]) -> str | None:
        """Apply a batch of stream items; the end reason if the stream ended in it."""
        ended = next((payload for tag, payload in batch if tag == "end"), None)
        refresh, removed = plan_batch([payload for tag, payload in batch if tag == "event"])
        if refresh and ended is None:
            rows = await asyncio.to_thread(self._rows, refresh)
            self._publish(rows)
            seen = {row.id for row in rows}
            removed += [cid for cid in refresh if cid not in seen]
        for cid in removed:
            if self._shown.pop(cid, None) is not None:
                self._emit(ContainerRemoved(endpoint=self.endpoint.name, id=cid))
        return ended

    def _publish(
        self, rows: list[ContainerInfo], *, full: bool = False, only_changed: bool = False
    ) -> None:
        """Emit rows (``only_changed``: those that differ from what was last emitted); with
        ``full`` (the list of every container), also remove shown rows that are gone."""
        for row in rows:
            key = (row.name, row.image, row.state, row.status, tuple(row.ports), row.platform)
            if only_changed and self._shown.get(row.id) == key:
                continue
            self._shown[row.id] = key
            self._emit(row)
        if full:
            ids = {row.id for row in rows}
            for gone in sorted(set(self._shown) - ids):
                del self._shown[gone]
                self._emit(ContainerRemoved(endpoint=self.endpoint.name, id=gone))


class ContainersSource:
    """Every Docker endpoint's containers, live (a :class:`sources.Source`).

    ``endpoints``: :class:`Endpoint` objects or names/URLs; None discovers them (host, instance
    sockets, contexts) and looks for new ones every ``rediscover_interval`` seconds.
    """

    name = "containers"

    def __init__(
        self,
        endpoints: list[Endpoint | str] | None = None,
        *,
        rediscover_interval: float = 5.0,
        retry_max: float = 2.0,
        refresh_interval: float = 60.0,
    ) -> None:
        self._fixed = (
            None
            if endpoints is None
            else [e if isinstance(e, Endpoint) else resolve(e) for e in endpoints]
        )
        self._rediscover_interval = rediscover_interval
        self._retry_max = retry_max
        self._refresh_interval = refresh_interval
        self.watchers: dict[str, EndpointWatcher] = {}  # by endpoint name, while running

    async def run(self, emit: Emit) -> None:
        """Watch each endpoint until cancelled."""
        tasks: dict[str, asyncio.Task[None]] = {}
        try:
            while True:
                for endpoint in self._fixed if self._fixed is not None else discover():
                    if endpoint.url not in tasks:
                        watcher = EndpointWatcher(
                            endpoint,
                            emit,
                            retry_max=self._retry_max,
                            refresh_interval=self._refresh_interval,
                        )
                        self.watchers[endpoint.name] = watcher
                        tasks[endpoint.url] = asyncio.create_task(
                            watcher.run(), name=f"containers:{endpoint.name}"
                        )
                if self._fixed is not None:
                    await asyncio.gather(*tasks.values())
                    return
                await asyncio.sleep(self._rediscover_interval)
        finally:
            for task in tasks.values():
                task.cancel()
            with contextlib.suppress(Exception):
                await asyncio.gather(*tasks.values(), return_exceptions=True)
            self.watchers.clear()
