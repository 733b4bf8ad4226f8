"""Typed events that flow from the backend to its clients (TUI, CLI, recordings).

Every event is a keyword-only dataclass with a class-level ``kind`` string. Its JSON Lines form
is ``{"kind": ..., "ts": ..., <fields>}`` — the same form the agent socket speaks and
``recordings/`` stores. Domain modules define their own event classes with :func:`register`, so
this module stays the one place that knows how to encode and decode them.
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
import types
import typing
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, TypedDict, TypeVar

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


class BadEvent(ValueError):
    """A JSON value that is not a well-typed event of a known kind (a field of the wrong type,
    a required field missing, not an object)."""


def from_dict(data: dict[str, Any]) -> Event:
    """Decode one event from its plain-JSON form; unknown fields are ignored (forward compat).

    Every known field is checked against its declared type (:class:`BadEvent` if one does not
    fit), so a consumer never meets ``"memory_bytes": "lots"``.
    """
    if not isinstance(data, dict):
        raise BadEvent(f"an event is a JSON object, not {type(data).__name__}")
    kind = data.get("kind")
    cls = _REGISTRY.get(kind) if isinstance(kind, str) else None
    if cls is None:
        raise UnknownEvent(f"unknown event kind {kind!r}")
    hints = _field_types(cls)
    values = {}
    for f in dataclasses.fields(cls):
        if f.name not in data:
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise BadEvent(f"{kind}: the field {f.name!r} is missing")
            continue
        problem = _type_problem(data[f.name], hints[f.name])
        if problem:
            raise BadEvent(f"{kind}: {f.name} {problem}")
        values[f.name] = data[f.name]
    return cls(**values)


def from_json(line: str) -> Event:
    """Decode one JSON Lines line."""
    return from_dict(json.loads(line))


# --- decode validation: JSON values against the fields' declared types ---------------------

_INT_LIMIT = 1 << 63  # JSON integers beyond int64 are no pid, size or port
# TypedDict rows whose keys may be partial (a "changed" process row carries what changed), but
# never without their identity.
_IDENTITY_KEYS: dict[str, tuple[str, ...]] = {"ProcessRow": ("pid",), "StatsFigures": ("subject",)}
_TYPES: dict[type, dict[str, Any]] = {}


def _field_types(cls: type) -> dict[str, Any]:
    """The resolved type hints of an event class or a TypedDict (cached)."""
    if cls not in _TYPES:
        from envdeck.backend.processes.model import ProcessRow

        _TYPES[cls] = typing.get_type_hints(cls, localns={"ProcessRow": ProcessRow})
    return _TYPES[cls]


def _type_problem(value: Any, hint: Any) -> str | None:
    """Why ``value`` (from JSON) does not fit ``hint``, or None when it does."""
    origin = typing.get_origin(hint)
    if hint is Any:
        return None
    if origin in (types.UnionType, typing.Union):
        options = typing.get_args(hint)
        if all(_type_problem(value, option) for option in options):
            return f"is not {' or '.join(_type_name(o) for o in options)}"
        return None
    if hint is type(None):
        return None if value is None else "is not null"
    if hint is bool:
        return None if isinstance(value, bool) else "is not a boolean"
    if hint is int:
        ok = isinstance(value, int) and not isinstance(value, bool) and abs(value) < _INT_LIMIT
        return None if ok else "is not an integer"
    if hint is float:
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        ok = ok and math.isfinite(value) and abs(value) < _INT_LIMIT
        return None if ok else "is not a finite number"
    if hint is str:
        return None if isinstance(value, str) and _encodable(value) else "is not text"
    if hint is dict or origin is dict:
        return None if isinstance(value, dict) else "is not an object"
    if origin is list:
        if not isinstance(value, list):
            return "is not a list"
        (item,) = typing.get_args(hint)
        for index, element in enumerate(value):
            problem = _type_problem(element, item)
            if problem:
                return f"[{index}] {problem}"
        return None
    if typing.is_typeddict(hint):
        return _typeddict_problem(value, hint)
    return f"has a type this decoder does not know ({hint!r})"


def _typeddict_problem(value: Any, hint: Any) -> str | None:
    if not isinstance(value, dict):
        return "is not an object"
    for key in _IDENTITY_KEYS.get(hint.__name__, ()):
        if key not in value:
            return f"has no {key!r}"
    for key, key_hint in _field_types(hint).items():
        if key in value:
            problem = _type_problem(value[key], key_hint)
            if problem:
                return f"{key!r} {problem}"
    return None


def _type_name(hint: Any) -> str:
    return "null" if hint is type(None) else getattr(hint, "__name__", str(hint))


def _encodable(text: str) -> bool:
    """False for lone surrogates (JSON's ``"\\ud800"``): not text a terminal can show."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


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


# --- resource statistics ----------------------------------------------------------------------


class StatsFigures(TypedDict, total=False):
    """One subject's figures at one tick; a figure that could not be read is left out.

    ``subject`` is ``host``, ``instance:NAME`` or ``container:ENDPOINT|ID``. CPU figures are
    percent of one core (100 = one core busy), as the process rows' ``cpu_percent``.
    """

    subject: str
    cpu_percent: float  # QEMU's / the container's cgroup / the host's processes
    memory_bytes: int  # QEMU's RSS / the container's memory.current
    memory_limit_bytes: int  # the container's memory.max
    emulated_cpu_percent: float  # CPU of the emulated processes of this subject
    guest_cpu_percent: float  # the guest's own /proc/stat
    guest_memory_bytes: int  # MemTotal - MemAvailable of the guest
    guest_memory_total_bytes: int


@register
@dataclass(kw_only=True)
class ResourceStats(Event):
    """Resource figures measured at one refresh tick by ``source`` ("host" or an instance)."""

    kind: ClassVar[str] = "stats.sample"
    source: str
    figures: list[StatsFigures] = field(default_factory=list)
