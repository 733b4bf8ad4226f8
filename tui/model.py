"""The dashboard's state: backend events folded into plain dicts (no Textual here).

The app feeds every event to :meth:`DashboardModel.apply`, which only updates dicts and marks
which panes are dirty; panes re-render from the model on the next refresh tick (batched).

Events are dispatched by class (:data:`HANDLERS`): an event class with no handler is recorded in
``errors`` (the app shows it, a unit test checks every class in events.py has one). A line of a
kind this build does not know never reaches the model: decoding raises
:class:`~envdeck.backend.events.UnknownEvent` and sources skip the line.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from typing import Any

from envdeck.backend import events as ev
from envdeck.backend.processes.model import ProcessRow
from envdeck.backend.stats.ring import History, container_subject, instance_subject

SERIAL_WINDOW = 5_000  # lines of serial console kept in memory per instance (whole log on disk)
MESSAGES_KEPT = 50

PANES = ("instances", "containers", "forwards", "processes", "serial", "header")
STATS_PANE = {"instance": "instances", "container": "containers"}  # who draws a subject's graph


class Dirty(set[str]):
    """The panes to render at the next refresh tick. ``on_mark`` is told when a pane not marked
    yet is (the app wakes its refresh timer: with nothing to render, no tick need run)."""

    def __init__(self, panes: Iterable[str] = ()) -> None:
        super().__init__(panes)
        self.on_mark: Callable[[], None] | None = None

    def add(self, pane: str) -> None:
        """Mark one pane."""
        if pane not in self:
            super().add(pane)
            if self.on_mark is not None:
                self.on_mark()

    def update(self, *panes: Iterable[str]) -> None:
        """Mark several panes."""
        before = len(self)
        super().update(*panes)
        if self.on_mark is not None and len(self) > before:
            self.on_mark()

    def __ior__(self, panes: AbstractSet[str]) -> Dirty:  # type: ignore[override,misc]
        """``dirty |= {...}`` marks through :meth:`update` (else the timer would sleep on)."""
        self.update(panes)
        return self


@dataclass
class ProcessChanges:
    """What happened to a host's rows since last taken: rows changed in place (and which of
    their fields), pids that came and went, or all rows replaced (``full``)."""

    pids: set[int] = field(default_factory=set)
    fields: set[str] = field(default_factory=set)
    added: set[int] = field(default_factory=set)
    removed: set[int] = field(default_factory=set)
    full: bool = False


@dataclass
class DashboardModel:
    """Everything the panes render, keyed the way events identify things."""

    instances: dict[str, ev.InstanceStatus] = field(default_factory=dict)
    stages: dict[str, dict[str, ev.BootStage]] = field(default_factory=dict)
    messages: dict[str, deque[ev.AgentMessage]] = field(default_factory=dict)
    forwards: dict[str, dict[str, ev.ForwardStatus]] = field(default_factory=dict)
    endpoints: dict[str, ev.EndpointStatus] = field(default_factory=dict)
    containers: dict[tuple[str, str], ev.ContainerInfo] = field(default_factory=dict)
    #: per host, pid -> row; a row is updated in place (the process pane keeps references)
    processes: dict[str, dict[int, ProcessRow]] = field(default_factory=dict)
    #: per host: bumped when rows come or go (or the host's rows start over), not when only
    #: values of rows change (those are in ``process_changes``)
    process_shapes: dict[str, int] = field(default_factory=dict)
    process_changes: dict[str, ProcessChanges] = field(default_factory=dict)
    reshapes: int = 0  # (a shape number is never reused, even for a host forgotten and back)
    process_summary: dict[str, dict] = field(default_factory=dict)
    processes_unavailable: dict[str, str] = field(default_factory=dict)
    serial: dict[str, deque[str]] = field(default_factory=dict)
    serial_times: dict[str, deque[float]] = field(default_factory=dict)  # ts of each window line
    serial_pending: dict[str, list[str]] = field(default_factory=dict)
    stats: History = field(default_factory=History)  # resource figures, the last few minutes
    dirty: Dirty = field(default_factory=lambda: Dirty(PANES))
    last_ts: float = 0.0
    serial_window: int = SERIAL_WINDOW
    errors: list[str] = field(default_factory=list)

    def apply(self, event: ev.Event) -> None:
        """Fold one event into the model and mark the panes it affects."""
        self.last_ts = max(self.last_ts, event.ts)
        handler = HANDLERS.get(type(event))
        if handler is not None:
            handler(self, event)
            return
        error = f"no handler for event {type(event).__name__} ({event.kind})"
        if error not in self.errors:
            self.errors.append(error)

    # --- instances -----------------------------------------------------------------------

    def _on_instance_status(self, e: ev.InstanceStatus) -> None:
        if e.state == "deleted":  # the instances source says its directory is gone
            self.forget_instance(e.instance)
            return
        previous = self.instances.get(e.instance)
        if e.state == "starting" and (previous is None or previous.state not in ("starting",)):
            self.stages.pop(e.instance, None)  # a new boot: forget the last one's stages
        self.instances[e.instance] = e
        self.dirty.update(("instances", "header"))

    def _on_instance_stage(self, e: ev.BootStage) -> None:
        self.stages.setdefault(e.instance, {})[e.stage] = e
        self.dirty.add("instances")

    def _on_instance_message(self, e: ev.AgentMessage) -> None:
        self.messages.setdefault(e.instance, deque(maxlen=MESSAGES_KEPT)).append(e)
        self.dirty.add("instances")

    def _on_instance_serial(self, e: ev.SerialOutput) -> None:
        window = self.serial.setdefault(e.instance, deque(maxlen=self.serial_window))
        window.extend(e.lines)
        times = self.serial_times.setdefault(e.instance, deque(maxlen=self.serial_window))
        times.extend([e.ts] * len(e.lines))
        pending = self.serial_pending.setdefault(e.instance, [])
        pending.extend(e.lines)
        if len(pending) > self.serial_window:  # a flood between two ticks: keep the newest
            del pending[: len(pending) - self.serial_window]
        self.dirty.add("serial")

    def forget_instance(self, name: str) -> None:
        """Drop everything known about an instance."""
        for table in (
            self.instances,
            self.stages,
            self.messages,
            self.forwards,
            self.serial,
            self.serial_times,
            self.serial_pending,
            self.processes,
            self.process_shapes,
            self.process_changes,
            self.process_summary,
            self.processes_unavailable,
        ):
            table.pop(name, None)
        self.stats.forget(instance_subject(name))
        self.stats.forget_prefix(container_subject(f"instance:{name}", ""))
        self.dirty.update(PANES)

    # --- forwards -----------------------------------------------------------------------

    def _on_forward_status(self, e: ev.ForwardStatus) -> None:
        self.forwards.setdefault(e.instance, {})[e.guest] = e
        self.dirty.add("forwards")

    def _on_forward_removed(self, e: ev.ForwardRemoved) -> None:
        self.forwards.get(e.instance, {}).pop(e.guest, None)
        self.dirty.add("forwards")

    # --- containers ---------------------------------------------------------------------

    def _on_docker_endpoint(self, e: ev.EndpointStatus) -> None:
        self.endpoints[e.endpoint] = e
        self.dirty.update(("containers", "header"))

    def _on_docker_container(self, e: ev.ContainerInfo) -> None:
        self.containers[(e.endpoint, e.id)] = e
        self.dirty.update(("containers", "header", "forwards"))  # forwards name publishers

    def _on_docker_removed(self, e: ev.ContainerRemoved) -> None:
        self.containers.pop((e.endpoint, e.id), None)
        self.dirty.update(("containers", "header", "forwards"))

    # --- processes ----------------------------------------------------------------------

    def _on_process_diff(self, e: ev.ProcessDiff) -> None:
        table = self.processes.setdefault(e.host, {})
        changes = self.process_changes.setdefault(e.host, ProcessChanges())
        reshaped = e.full or bool(e.added) or bool(e.removed)
        if e.full:
            table.clear()
            changes.full = True
        for pid in e.removed:  # (first: a reused pid is in removed and added)
            table.pop(pid, None)
            changes.removed.add(pid)
        for row in e.added:
            table[row["pid"]] = row.copy()  # (our own copy: changes are applied in place)
            changes.added.add(row["pid"])
        for row in e.changed:
            pid = row["pid"]
            old = table.get(pid)
            if old is None:
                table[pid] = row.copy()
                changes.added.add(pid)
                reshaped = True
                continue
            changes.fields.update(k for k, v in row.items() if old.get(k) != v)
            changes.pids.add(pid)
            old.update(row)
        if reshaped:
            self._reshaped(e.host)
        if e.summary:
            self.process_summary[e.host] = e.summary
        self.processes_unavailable.pop(e.host, None)
        self.dirty.update(("processes", "header"))

    def _on_process_unavailable(self, e: ev.ProcessesUnavailable) -> None:
        self.processes_unavailable[e.host] = e.reason
        self.processes.pop(e.host, None)
        self.process_changes.setdefault(e.host, ProcessChanges()).full = True
        self._reshaped(e.host)
        self.dirty.update(("processes", "header"))

    def _reshaped(self, host: str) -> None:
        self.reshapes += 1
        self.process_shapes[host] = self.reshapes

    # --- resource figures -------------------------------------------------------------------

    def _on_stats(self, e: ev.ResourceStats) -> None:
        for figures in e.figures:
            subject = figures["subject"]
            for key, value in figures.items():
                if key != "subject" and isinstance(value, int | float):
                    self.stats.add(subject, key, value)
            kind = subject.partition(":")[0]
            self.dirty.add(STATS_PANE.get(kind, "header"))

    # --- queries for panes ----------------------------------------------------------------

    def take_process_changes(self, host: str) -> ProcessChanges:
        """The in-place changes of ``host``'s rows since the last call (or its last reshape)."""
        return self.process_changes.pop(host, None) or ProcessChanges()

    def take_serial(self, instance: str) -> list[str]:
        """Lines of ``instance`` that arrived since the last call (for batched writes)."""
        return self.serial_pending.pop(instance, [])

    def serial_with_times(self, instance: str, last: int | None = None) -> list[tuple[float, str]]:
        """(ts, line) of the window, or of its ``last`` lines."""
        lines = list(self.serial.get(instance, ()))
        times = list(self.serial_times.get(instance, ()))
        pairs = list(zip(times, lines, strict=False))
        return pairs if last is None else pairs[len(pairs) - last :] if last else []

    def ordered_stages(self, instance: str) -> list[ev.BootStage]:
        """Boot stages of the current boot, in the order they first appeared."""
        return list(self.stages.get(instance, {}).values())

    def container_groups(self) -> list[tuple[str, list[ev.ContainerInfo]]]:
        """Containers grouped by endpoint (host first), each group sorted by name."""
        names = set(self.endpoints) | {endpoint for endpoint, _ in self.containers}
        order = sorted(names, key=lambda n: (n != "host", n))
        groups: dict[str, list[ev.ContainerInfo]] = {n: [] for n in order}
        for (endpoint, _), info in self.containers.items():
            groups[endpoint].append(info)
        return [(n, sorted(groups[n], key=lambda c: c.name)) for n in order]

    def process_hosts(self) -> list[str]:
        """Hosts with process data or a reason there is none (host first)."""
        names = set(self.processes) | set(self.processes_unavailable)
        return sorted(names, key=lambda n: (n != "host", n))


Handler = Callable[[DashboardModel, Any], None]

HANDLERS: dict[type[ev.Event], Handler] = {
    ev.InstanceStatus: DashboardModel._on_instance_status,
    ev.BootStage: DashboardModel._on_instance_stage,
    ev.AgentMessage: DashboardModel._on_instance_message,
    ev.SerialOutput: DashboardModel._on_instance_serial,
    ev.ForwardStatus: DashboardModel._on_forward_status,
    ev.ForwardRemoved: DashboardModel._on_forward_removed,
    ev.EndpointStatus: DashboardModel._on_docker_endpoint,
    ev.ContainerInfo: DashboardModel._on_docker_container,
    ev.ContainerRemoved: DashboardModel._on_docker_removed,
    ev.ProcessDiff: DashboardModel._on_process_diff,
    ev.ProcessesUnavailable: DashboardModel._on_process_unavailable,
    ev.ResourceStats: DashboardModel._on_stats,
}
"""Each event class and the method that folds it into the model."""
