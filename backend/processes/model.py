"""The process data model: what a scan knows about a process, a snapshot, and its totals."""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, TypedDict

PF_KTHREAD = 0x00200000  # task flag of kernel threads (/proc/PID/stat field 9)


class Emulation(TypedDict):
    """How an emulated process runs (``emulation.detect``): a row's ``emulated`` part."""

    arch: str  # guest arch, QEMU spelling (aarch64, arm, riscv64, ...)
    interpreter: str  # the QEMU binary or binfmt interpreter
    program: str | None  # the guest program's path, as passed to the interpreter
    argv: list[str]  # the guest program's argv
    command: str  # argv as a shell would quote it (the program path when argv is empty)
    preserve_argv0: bool  # binfmt P flag: argv[0] was passed as given
    arch_source: str  # "interpreter" (from its name) or "elf" (the program's header)


class ProcessRow(TypedDict):
    """One process as plain JSON: a row of ``envdeck ps --json``, of ProcessDiff, of recordings."""

    pid: int
    ppid: int
    user: str | None
    uid: int | None
    state: str
    cpu_percent: float
    rss_bytes: int
    start_time: float
    start_ticks: int
    name: str
    cmdline: list[str]
    exe: str | None
    kernel: bool
    depth: int
    container: str | None
    container_id: str | None
    emulated: Emulation | None


@dataclass(slots=True, eq=False)
class Static:
    """What changes only on exec: read once per (pid, start time, comm)."""

    comm: str
    cmdline: list[str]
    exe: str | None = None
    uid: int | None = None
    user: str | None = None
    kernel: bool = False
    cgroup_container: str | None = None  # own cgroup's container id
    shim_container: str | None = None  # set on containerd-shim processes: their children's id
    runtime: bool = False  # a container runtime process (containerd-shim, conmon)
    cgroup_read: bool = False  # cgroup is read only while a container runtime runs
    emulated: Emulation | None = None
    settled: bool = True  # False when read mid-exec (empty cmdline): read again next scan


@dataclass(slots=True, eq=False)
class Proc:
    """One process in a snapshot."""

    pid: int
    ppid: int  # the parent in the tree (0 when the kernel's ppid names a reused pid)
    start_ticks: int  # clock ticks after boot: (pid, start_ticks) identifies a process
    start_time: float  # wall clock (epoch seconds)
    state: str
    cpu_ticks: int  # utime + stime
    rss_bytes: int
    static: Static
    cpu_percent: float = 0.0
    depth: int = 0
    container_id: str | None = None
    container: str | None = None
    raw_ppid: int = -1  # the ppid the kernel reported (-1: same as ppid)

    def __post_init__(self) -> None:
        if self.raw_ppid == -1:
            self.raw_ppid = self.ppid

    @property
    def name(self) -> str:
        """The kernel's comm (the guest program's name for binfmt-emulated processes)."""
        return self.static.comm

    def dynamic(self) -> tuple:
        """The fields whose change makes a row 'changed' in a diff."""
        return (
            self.state,
            self.ppid,
            round(self.cpu_percent, 1),
            self.rss_bytes,
            self.depth,
            self.container,
        )

    def row(self) -> ProcessRow:
        """The plain-JSON row (the keys of ``envdeck ps --json``)."""
        st = self.static
        emulated = None
        if st.emulated is not None:
            emulated = st.emulated.copy()
        return {
            "pid": self.pid,
            "ppid": self.ppid,
            "user": st.user,
            "uid": st.uid,
            "state": self.state,
            "cpu_percent": round(self.cpu_percent, 1),
            "rss_bytes": self.rss_bytes,
            "start_time": round(self.start_time, 2),
            "start_ticks": self.start_ticks,
            "name": st.comm,
            "cmdline": list(st.cmdline),
            "exe": st.exe,
            "kernel": st.kernel,
            "depth": self.depth,
            "container": self.container,
            "container_id": self.container_id,
            "emulated": emulated,
        }


@dataclass(slots=True)
class Snapshot:
    """One scan of a host: processes in tree order (parents before children)."""

    host: str
    procs: dict[int, Proc]
    taken_at: float = field(default_factory=time.time)
    interval: float | None = None  # seconds since the previous snapshot of the same scanner
    clock: float | None = None  # the scanned host's monotonic clock (guests: their uptime)

    def rows(self) -> list[ProcessRow]:
        """Every row, in tree order."""
        return [p.row() for p in self.procs.values()]

    def summary(self) -> dict[str, Any]:
        """Totals: processes, emulated count and CPU share, per container and per arch."""
        return summarize(self.procs.values(), self.interval)


def cpu_percent(
    cpu_ticks: int,
    start_ticks: int,
    hz: int,
    *,
    prev_ticks: int | None,
    dt: float | None,
    uptime: float | None,
) -> float:
    """CPU % of one process: over the last interval when it was seen before (same start time),
    else averaged over its lifetime (a new process). Never negative."""
    if prev_ticks is not None:
        return max((cpu_ticks - prev_ticks) / hz / dt * 100.0, 0.0) if dt and dt > 0 else 0.0
    age = uptime - start_ticks / hz if uptime is not None else 0.0
    return max(cpu_ticks / hz / age * 100.0, 0.0) if age > 0.01 else 0.0


def summarize(procs: Iterable[Proc], interval: float | None = None) -> dict[str, Any]:
    """Emulation cost over the last interval, overall and per container and arch."""
    total = emulated = 0
    cpu = emu_cpu = 0.0
    by_container: dict[str, dict[str, Any]] = {}
    by_arch: dict[str, dict[str, Any]] = {}
    for p in procs:
        total += 1
        cpu += p.cpu_percent
        emu = p.static.emulated
        if emu is not None:
            emulated += 1
            emu_cpu += p.cpu_percent
            arch = by_arch.setdefault(emu["arch"], {"processes": 0, "cpu_percent": 0.0})
            arch["processes"] += 1
            arch["cpu_percent"] += p.cpu_percent
        if p.container is not None:
            c = by_container.setdefault(
                p.container,
                {"processes": 0, "emulated": 0, "cpu_percent": 0.0, "emulated_cpu_percent": 0.0},
            )
            c["processes"] += 1
            c["cpu_percent"] += p.cpu_percent
            if emu is not None:
                c["emulated"] += 1
                c["emulated_cpu_percent"] += p.cpu_percent
    for group in (*by_container.values(), *by_arch.values()):
        for key in ("cpu_percent", "emulated_cpu_percent"):
            if key in group:
                group[key] = round(group[key], 1)
    return {
        "processes": total,
        "emulated": emulated,
        "cpu_percent": round(cpu, 1),
        "emulated_cpu_percent": round(emu_cpu, 1),
        "emulated_cpu_share": round(emu_cpu / cpu, 3) if cpu > 0 else 0.0,
        "interval_s": round(interval, 3) if interval else None,
        "by_container": by_container,
        "by_arch": by_arch,
    }
