"""Typed events that flow from the backend to its clients (TUI, CLI, recordings).

Every event is a keyword-only dataclass with a class-level ``kind`` string. Its JSON Lines form
is ``{"kind": ..., "ts": ..., <fields>}`` — the same form the agent socket speaks and
``recordings/`` stores. Domain modules define their own event classes with :func:`register`, so
this module stays the one place that knows how to encode and decode them.
"""

from __future__ import annotations

import dataclasses
import json
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

if TYPE_CHECKING:
    from envdeck.backend.processes.model import ProcessRow

_REGISTRY: dict[str, type[Event]] = {}

E = TypeVar("E", bound="Event")


@dataclass(kw_only=True)
class Event:
    """Base of every backend event. ``ts`` is wall-clock seconds (time.time())."""

    kind: ClassVar[str] = "event"
    ts: float = field(default_factory=time.time)

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form, with ``kind`` first."""
        return {"kind": self.kind, **dataclasses.asdict(self)}

    def to_json(self) -> str:
        """One JSON Lines line, without the trailing newline."""
        return json.dumps(self.to_dict(), separators=(",", ":"), default=str)


def register(cls: type[E]) -> type[E]:
    """Class decorator: make an event class decodable by its ``kind``."""
    if cls.kind in _REGISTRY and _REGISTRY[cls.kind] is not cls:
        raise ValueError(f"event kind {cls.kind!r} registered twice")
    _REGISTRY[cls.kind] = cls
    return cls


class UnknownEvent(ValueError):
    """A JSON line whose ``kind`` no registered event class claims."""


def from_dict(data: dict[str, Any]) -> Event:
    """Decode one event from its plain-JSON form; unknown fields are ignored (forward compat)."""
    kind = data.get("kind")
    cls = _REGISTRY.get(kind)  # type: ignore[arg-type]
    if cls is None:
        raise UnknownEvent(f"unknown event kind {kind!r}")
    names = {f.name for f in dataclasses.fields(cls)}
    return cls(**{k: v for k, v in data.items() if k in names})


def from_json(line: str) -> Event:
    """Decode one JSON Lines line."""
    return from_dict(json.loads(line))


# --- instance events (emitted by the per-instance agent) -----------------------------------


@register
@dataclass(kw_only=True)
class InstanceStatus(Event):
    """The whole observable status of one instance; sent on every change."""

    kind: ClassVar[str] = "instance.status"
    instance: str
    state: str  # stopped|starting|booting|ready|stopping|crashed|degraded (|deleted: row gone)
    arch: str = "x86_64"
    accel: str | None = None
    cpus: int = 1
    memory_bytes: int = 0
    disk_bytes: int = 0
    ssh_port: int | None = None
    pid: int | None = None
    started_at: float | None = None
    reason: str | None = None


@register
@dataclass(kw_only=True)
class BootStage(Event):
    """A named boot stage changed: ``status`` is running|done|failed|stalled."""

    kind: ClassVar[str] = "instance.stage"
    instance: str
    stage: str
    status: str
    elapsed_s: float = 0.0
    detail: str | None = None


@register
@dataclass(kw_only=True)
class SerialOutput(Event):
    """A batch of serial console lines (CR and ANSI sequences already stripped)."""

    kind: ClassVar[str] = "instance.serial"
    instance: str
    lines: list[str]


@register
@dataclass(kw_only=True)
class AgentMessage(Event):
    """Something the agent wants a human to read (accel fallback, shutdown path, errors)."""

    kind: ClassVar[str] = "instance.message"
    instance: str
    level: str  # info|warning|error
    text: str


# --- port forwards (owned by the agent) --------------------------------------------------------


@register
@dataclass(kw_only=True)
class ForwardStatus(Event):
    """One port or socket forward of an instance; sent on every change."""

    kind: ClassVar[str] = "forward.status"
    instance: str
    guest: str  # "8080" or a guest socket path
    host: str  # "127.0.0.1:8080" or a host path
    source: str  # rule|auto|manual
    state: str  # active|conflict|failed
    reason: str | None = None
    connections: int = 0
    bytes_in: int = 0
    bytes_out: int = 0


@register
@dataclass(kw_only=True)
class ForwardRemoved(Event):
    """A forward went away (guest stopped listening, or removed by the user)."""

    kind: ClassVar[str] = "forward.removed"
    instance: str
    guest: str


# --- containers ----------------------------------------------------------------------------


@register
@dataclass(kw_only=True)
class EndpointStatus(Event):
    """A Docker endpoint (host daemon, an instance's forwarded socket, a context)."""

    kind: ClassVar[str] = "docker.endpoint"
    endpoint: str  # "host", "instance:NAME", "context:NAME"
    reachable: bool
    reason: str | None = None
    native_arch: str | None = None  # "amd64", "arm64", ...
    docker_host: str | None = None  # the URL used


@register
@dataclass(kw_only=True)
class ContainerInfo(Event):
    """A container appeared or changed (same ``endpoint`` + ``id`` replaces the old row)."""

    kind: ClassVar[str] = "docker.container"
    endpoint: str
    id: str
    name: str
    image: str
    state: str  # created|running|paused|restarting|exited|dead
    status: str  # docker's human text, e.g. "Up 3 minutes"
    created: float | None = None
    ports: list[str] = field(default_factory=list)
    platform: str | None = None  # "linux/arm64"
    emulated: bool = False


@register
@dataclass(kw_only=True)
class ContainerRemoved(Event):
    """A container is gone."""

    kind: ClassVar[str] = "docker.removed"
    endpoint: str
    id: str


# --- processes ------------------------------------------------------------------------------


@register
@dataclass(kw_only=True)
class ProcessDiff(Event):
    """Process snapshot changes for one host ("host" or an instance name).

    Rows are plain dicts with the keys of ``envdeck ps --json`` (pid, ppid, user, state,
    cpu_percent, rss_bytes, start_time, cmdline, name, depth, container, emulated).
    ``full`` is true when ``added`` is the whole snapshot (first tick, or after a resync);
    ``removed`` holds pids. ``summary`` carries totals such as emulated count and CPU share.
    """

    kind: ClassVar[str] = "process.diff"
    host: str
    full: bool = False
    added: list[ProcessRow] = field(default_factory=list)
    changed: list[ProcessRow] = field(default_factory=list)
    removed: list[int] = field(default_factory=list)
    summary: dict = field(default_factory=dict)


@register
@dataclass(kw_only=True)
class ProcessesUnavailable(Event):
    """No live process data for ``host`` (e.g. the guest's SSH is down): show it, never stale."""

    kind: ClassVar[str] = "process.unavailable"
    host: str
    reason: str
