"""A daemon's container events, followed in a thread and handed to asyncio.

The docker SDK is blocking, so one thread per connected endpoint reads ``/events`` with its own
``DockerClient`` (thread safety of a shared client is undocumented) and passes each item to the
event loop with ``loop.call_soon_threadsafe``. Items are ``(tag, payload)`` tuples:

* ``("subscribed", None)``: the stream is open; events from now on will arrive.
* ``("event", dict)``: one decoded docker event.
* ``("end", reason)``: the stream ended (daemon stopped, connection lost, or closed by us).

:meth:`EventStream.close` ends the stream from any thread (it shuts the socket down) and the
thread then exits; nothing is left behind per reconnect.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable
from typing import Any

from envdeck.backend.containers.endpoints import Endpoint, make_client, unreachable_reason

Item = tuple[str, Any]


class EventStream:
    """Follow the ``type=container`` events of one endpoint in a background thread."""

    def __init__(
        self,
        endpoint: Endpoint,
        loop: asyncio.AbstractEventLoop,
        deliver: Callable[[Item], None],
        *,
        version: str = "auto",
    ) -> None:
        self.endpoint = endpoint
        self._loop = loop
        self._deliver = deliver
        self._version = version
        self._lock = threading.Lock()
        self._stream: Any = None
        self._closed = False
        self._thread = threading.Thread(
            target=self._run, daemon=True, name=f"docker-events:{endpoint.name}"
        )

    def start(self) -> EventStream:
        """Start the thread; returns self."""
        self._thread.start()
        return self

    def _post(self, item: Item) -> None:
        with contextlib.suppress(RuntimeError):  # the loop is already closed: nobody listens
            self._loop.call_soon_threadsafe(self._deliver, item)

    def _run(self) -> None:
        reason = "events stream ended (daemon stopped?)"
        client = None
        try:
            client = make_client(self.endpoint, timeout=10, version=self._version)
            stream = client.events(decode=True, filters={"type": ["container"]})
            with self._lock:
                self._stream = stream
                closed = self._closed
            if closed:
                stream.close()
                return
            self._post(("subscribed", None))
            for event in stream:
                self._post(("event", event))
        except Exception as exc:  # noqa: BLE001 - any failure means: this stream is over
            reason = unreachable_reason(self.endpoint, exc)
        finally:
            if client is not None:
                client.close()
            if self._closed:
                reason = "closed"
            self._post(("end", reason))

    def close(self) -> None:
        """End the stream (from any thread); the thread exits soon after."""
        with self._lock:
            self._closed = True
            stream = self._stream
        if stream is not None:
            with contextlib.suppress(Exception):
                stream.close()

    def join(self, timeout: float = 5.0) -> bool:
        """Wait for the thread to exit; True when it did."""
        self._thread.join(timeout)
        return not self._thread.is_alive()

    async def aclose(self) -> None:
        """Close and wait for the thread without blocking the event loop."""
        self.close()
        if self._thread.is_alive():
            await asyncio.to_thread(self.join)
