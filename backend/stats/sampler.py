"""Resource figures folded from the events other sources already produce.

:class:`StatsSampler` sees every event on its way to the hub. After each host process scan it
answers with one :class:`~envdeck.backend.events.ResourceStats`: the host's emulation cost,
each running instance's QEMU CPU and RSS (its row in that scan), each running host container's
CPU and memory (its cgroup files). After each guest walk it answers with the guest's emulation
cost and its containers' CPU and memory (their processes in that walk).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from envdeck.backend import events as ev
from envdeck.backend.processes.model import ProcessRow
from envdeck.backend.stats.cgroup import (
    CGROUP_ROOT,
    CgroupFiles,
    CgroupUsage,
    cpu_percent,
    files_for_container,
    read_usage,
)
from envdeck.backend.stats.ring import container_subject, instance_subject

HOST = "host"
NOT_RUNNING = ("stopped", "crashed", "deleted", "suspended")
CGROUP_RETRY_S = 10.0  # a container whose cgroup files were not found is looked for again


class StatsSampler:
    """Keeps what the figures need (QEMU pids, running containers, process rows) from events."""

    def __init__(
        self,
        *,
        cgroup_root: str = CGROUP_ROOT,
        proc: str = "/proc",
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.cgroup_root = cgroup_root
        self.proc = proc
        self.clock = clock
        self.qemu: dict[str, int] = {}  # running instance -> QEMU's pid on the host
        self.containers: dict[tuple[str, str], str] = {}  # running (endpoint, id) -> name
        self.rows: dict[str, dict[int, ProcessRow]] = {}  # host -> pid -> last row
        self._files: dict[str, CgroupFiles | None] = {}
        self._looked: dict[str, float] = {}
        self._readings: dict[str, tuple[float, CgroupUsage]] = {}

    def see(self, event: ev.Event) -> list[ev.Event]:
        """Fold one event; the figures it completes (after a process scan), else nothing."""
        if isinstance(event, ev.InstanceStatus):
            if event.pid is not None and event.state not in NOT_RUNNING:
                self.qemu[event.instance] = event.pid
            else:
                self.qemu.pop(event.instance, None)
        elif isinstance(event, ev.ContainerInfo):
            if event.state == "running":
                self.containers[(event.endpoint, event.id)] = event.name
            else:
                self._drop_container(event.endpoint, event.id)
        elif isinstance(event, ev.ContainerRemoved):
            self._drop_container(event.endpoint, event.id)
        elif isinstance(event, ev.ProcessesUnavailable):
            self.rows.pop(event.host, None)
        elif isinstance(event, ev.ProcessDiff):
            self._fold(event)
            figures = self.host_figures(event) if event.host == HOST else self.guest_figures(event)
            if figures:
                return [ev.ResourceStats(source=event.host, figures=figures)]
        return []

    def _drop_container(self, endpoint: str, cid: str) -> None:
        self.containers.pop((endpoint, cid), None)
        for table in (self._files, self._looked, self._readings):
            table.pop(cid, None)

    def _fold(self, diff: ev.ProcessDiff) -> None:
        table = self.rows.setdefault(diff.host, {})
        if diff.full:
            table.clear()
        for pid in diff.removed:
            table.pop(pid, None)
        for row in diff.added:
            table[row["pid"]] = row
        for row in diff.changed:
            old = table.get(row["pid"])
            table[row["pid"]] = {**old, **row} if old else row

    # --- the host ----------------------------------------------------------------------

    def host_figures(self, diff: ev.ProcessDiff) -> list[ev.StatsFigures]:
        """The host's emulation cost, QEMU per instance, cgroup figures per host container."""
        summary = diff.summary
        out: list[ev.StatsFigures] = []
        if summary:
            out.append(
                {
                    "subject": HOST,
                    "cpu_percent": float(summary.get("cpu_percent") or 0.0),
                    "emulated_cpu_percent": float(summary.get("emulated_cpu_percent") or 0.0),
                }
            )
        rows = self.rows.get(HOST, {})
        for name, pid in sorted(self.qemu.items()):
            row = rows.get(pid)
            if row is not None:
                out.append(
                    {
                        "subject": instance_subject(name),
                        "cpu_percent": float(row.get("cpu_percent") or 0.0),
                        "memory_bytes": int(row.get("rss_bytes") or 0),
                    }
                )
        by_container = summary.get("by_container") or {}
        now = self.clock()
        for (endpoint, cid), name in sorted(self.containers.items()):
            if endpoint != HOST:
                continue
            figures: ev.StatsFigures = {"subject": container_subject(endpoint, cid)}
            figures.update(self._cgroup_figures(cid, now))
            group = by_container.get(name) or by_container.get(cid[:12])
            if group is not None:
                figures["emulated_cpu_percent"] = float(group.get("emulated_cpu_percent") or 0.0)
            if len(figures) > 1:
                out.append(figures)
        return out

    def _cgroup_figures(self, cid: str, now: float) -> ev.StatsFigures:
        """CPU (from the second reading on) and memory of a host container; {} when unread."""
        files = self._files.get(cid)
        if files is None and now - self._looked.get(cid, -CGROUP_RETRY_S) >= CGROUP_RETRY_S:
            self._looked[cid] = now
            files = self._files[cid] = files_for_container(
                cid, self._a_pid_of(cid), root=self.cgroup_root, proc=self.proc
            )
        if files is None:
            return {}
        usage = read_usage(files)
        if usage is None:  # gone (or another cgroup now): look again later
            self._files[cid] = None
            self._readings.pop(cid, None)
            return {}
        out: ev.StatsFigures = {}
        previous = self._readings.get(cid)
        self._readings[cid] = (now, usage)
        if previous is not None:
            pct = cpu_percent(previous[1], usage, now - previous[0])
            if pct is not None:
                out["cpu_percent"] = round(pct, 1)
        if usage.memory_bytes is not None:
            out["memory_bytes"] = usage.memory_bytes
        if usage.limit_bytes is not None:
            out["memory_limit_bytes"] = usage.limit_bytes
        return out

    def _a_pid_of(self, cid: str) -> int | None:
        """A host process of the container (its row's container_id), to read its cgroup."""
        for row in self.rows.get(HOST, {}).values():
            if row.get("container_id") == cid:
                return row["pid"]
        return None

    # --- a guest -----------------------------------------------------------------------

    def guest_figures(self, diff: ev.ProcessDiff) -> list[ev.StatsFigures]:
        """The guest's emulation cost and its containers' CPU and memory (their processes)."""
        summary: dict[str, Any] = diff.summary
        out: list[ev.StatsFigures] = []
        if summary:
            out.append(
                {
                    "subject": instance_subject(diff.host),
                    "emulated_cpu_percent": float(summary.get("emulated_cpu_percent") or 0.0),
                }
            )
        endpoint = f"instance:{diff.host}"
        running = {name: cid for (ep, cid), name in self.containers.items() if ep == endpoint}
        if not running:
            return out
        memory: dict[str, int] = {}
        for row in self.rows.get(diff.host, {}).values():
            label = row.get("container")
            if label is not None:
                memory[label] = memory.get(label, 0) + int(row.get("rss_bytes") or 0)
        by_container = summary.get("by_container") or {}
        for name, cid in sorted(running.items()):
            label = name if name in memory or name in by_container else cid[:12]
            group = by_container.get(label) or {}
            out.append(
                {
                    "subject": container_subject(endpoint, cid),
                    "cpu_percent": float(group.get("cpu_percent") or 0.0),
                    "memory_bytes": memory.get(label, 0),
                    "emulated_cpu_percent": float(group.get("emulated_cpu_percent") or 0.0),
                }
            )
        return out
