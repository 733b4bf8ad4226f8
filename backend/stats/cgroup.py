"""A container's CPU and memory from the host's cgroup files (v2, or v1's cpuacct + memory).

The files are found once per container (by its id under Docker's usual cgroup paths, else from
one of its processes' ``/proc/PID/cgroup``) and then read each tick: two or three small reads,
no process started, no Docker call. A file that is missing reads as None: no graph, no error.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

CGROUP_ROOT = "/sys/fs/cgroup"
UNLIMITED = 1 << 60  # v1 reports "no limit" as a page-rounded 2**63


@dataclass(frozen=True)
class CgroupFiles:
    """Where one cgroup's CPU usage and memory are read."""

    cpu: str  # v2 cpu.stat (usage_usec line) or v1 cpuacct.usage (nanoseconds)
    memory: str  # v2 memory.current or v1 memory.usage_in_bytes
    limit: str  # v2 memory.max or v1 memory.limit_in_bytes
    v2: bool


@dataclass(frozen=True)
class CgroupUsage:
    """One reading: CPU time used so far, memory now, the memory limit (None: unlimited)."""

    cpu_ns: int
    memory_bytes: int | None
    limit_bytes: int | None


def v2_files(path: str) -> CgroupFiles:
    """The files of a cgroup v2 directory."""
    return CgroupFiles(f"{path}/cpu.stat", f"{path}/memory.current", f"{path}/memory.max", True)


def v1_files(root: str, path: str) -> CgroupFiles:
    """The files of a cgroup v1 path (``/docker/ID``) under the cpuacct and memory hierarchies."""
    memory = f"{root}/memory{path}"
    return CgroupFiles(
        f"{root}/cpuacct{path}/cpuacct.usage",
        f"{memory}/memory.usage_in_bytes",
        f"{memory}/memory.limit_in_bytes",
        False,
    )


def files_for_container(
    cid: str, pid: int | None = None, *, root: str = CGROUP_ROOT, proc: str = "/proc"
) -> CgroupFiles | None:
    """The cgroup files of container ``cid`` (full id), or None when none can be found."""
    v2 = os.path.exists(f"{root}/cgroup.controllers")
    for path in (f"/system.slice/docker-{cid}.scope", f"/docker/{cid}"):
        files = v2_files(root + path) if v2 else v1_files(root, path)
        if os.path.exists(files.cpu):
            return files
    if pid is None:
        return None
    try:
        with open(f"{proc}/{pid}/cgroup", encoding="utf-8", errors="replace") as f:
            text = f.read(16384)
    except OSError:
        return None
    return files_from_proc_cgroup(text, root=root, v2=v2)


def files_from_proc_cgroup(text: str, *, root: str = CGROUP_ROOT, v2: bool) -> CgroupFiles | None:
    """The cgroup files named by a ``/proc/PID/cgroup`` text (None when it names none)."""
    for line in text.splitlines():
        hierarchy, _, rest = line.partition(":")
        controllers, _, path = rest.partition(":")
        if not path.startswith("/"):
            continue
        if v2 and hierarchy == "0" and controllers == "":
            return v2_files(root + path.rstrip("/"))
        if not v2 and "cpuacct" in controllers.split(","):
            return v1_files(root, path.rstrip("/"))
    return None


def _read(path: str) -> str | None:
    try:
        with open(path, encoding="ascii", errors="replace") as f:
            return f.read(4096)
    except OSError:
        return None


def _int(text: str | None) -> int | None:
    try:
        return int(text.strip()) if text is not None else None
    except ValueError:
        return None


def read_usage(files: CgroupFiles) -> CgroupUsage | None:
    """Read the files now; None when the CPU figure cannot be read (the cgroup is gone)."""
    cpu_text = _read(files.cpu)
    if cpu_text is None:
        return None
    if files.v2:
        cpu_ns = next(
            (
                _int(line.split()[1])
                for line in cpu_text.splitlines()
                if line.startswith("usage_usec ") and len(line.split()) == 2
            ),
            None,
        )
        cpu_ns = cpu_ns * 1000 if cpu_ns is not None else None
    else:
        cpu_ns = _int(cpu_text)
    if cpu_ns is None:
        return None
    limit = _int(_read(files.limit))  # v2 "max" reads as None: unlimited
    return CgroupUsage(
        cpu_ns=cpu_ns,
        memory_bytes=_int(_read(files.memory)),
        limit_bytes=limit if limit is not None and limit < UNLIMITED else None,
    )


def cpu_percent(before: CgroupUsage, after: CgroupUsage, seconds: float) -> float | None:
    """CPU % between two readings ``seconds`` apart (100 = one core); None without a delta."""
    if seconds <= 0 or after.cpu_ns < before.cpu_ns:
        return None
    return (after.cpu_ns - before.cpu_ns) / 1e9 / seconds * 100.0
