"""Host process snapshots: a lean /proc scanner and the event source built on it.

Per tick the scanner does one ``pread`` of each ``/proc/PID/stat`` (kept open between ticks:
the descriptor follows the task, so a reused PID is never misread) and nothing else for a
process whose stat line did not change since the last tick (it is carried over as is). The
command line, exe link, user and emulation verdict are read once per ``(pid, start time,
comm)``: they change only on exec, which changes comm. Cgroups (costly on cgroup v1) are read
only while a container runtime (containerd-shim, conmon) runs. CPU % is the tick delta over the
wall time between two scans (per core: 100 = one full core); a process new to the scanner gets
its lifetime average, as ``ps`` shows. Processes that vanish mid-scan are dropped, kernel
threads and zombies kept, AccessDenied leaves a field None, and a parent younger than its child
(a reused PID) is not taken as the parent.
"""

from __future__ import annotations

import contextlib
import errno
import os
import sys
import threading
import time
from typing import TYPE_CHECKING

from envdeck.backend.events import ProcessesUnavailable
from envdeck.backend.processes import binfmt
from envdeck.backend.processes.cgroups import (
    ContainerNames,
    container_id_from_cgroup,
    shim_container_id,
)
from envdeck.backend.processes.emulation import detect
from envdeck.backend.processes.model import (
    PF_KTHREAD,
    Proc,
    Snapshot,
    Static,
    cpu_percent,
    summarize,
)
from envdeck.backend.processes.signals import read_start_time, send_signal
from envdeck.backend.processes.statfds import StatReader
from envdeck.backend.processes.tree import diff, link, tree_order, tree_walk

if TYPE_CHECKING:
    from envdeck.backend.sources import Emit

# asyncio and psutil are imported where used: `envdeck ps` scans /proc without them.

CLK_TCK: int = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
PAGE_SIZE: int = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096

__all__ = [
    "CLK_TCK",
    "PF_KTHREAD",
    "HostScanner",
    "Proc",
    "ProcessSource",
    "Snapshot",
    "Static",
    "diff",
    "link",
    "read_start_time",
    "send_signal",
    "snapshot",
    "summarize",
    "tree_order",
    "tree_walk",
]


class _Users:
    """uid -> user name, cached (names do not change under a running scanner)."""

    def __init__(self) -> None:
        self._cache: dict[int, str] = {}

    def name(self, uid: int) -> str:
        name = self._cache.get(uid)
        if name is None:
            try:
                import pwd

                name = pwd.getpwuid(uid).pw_name
            except (KeyError, ImportError):
                name = str(uid)
            self._cache[uid] = name
        return name


def _read(path: str, limit: int = 1 << 17, chunk: int = 32768) -> bytes:
    """A /proc file's content up to ``limit``; a short read ends it (procfs reads are whole)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        data = os.read(fd, min(chunk, limit))
        if len(data) < min(chunk, limit):
            return data
        chunks = [data]
        size = len(data)
        while size < limit:
            more = os.read(fd, chunk)
            if not more:
                break
            chunks.append(more)
            size += len(more)
        return b"".join(chunks)
    finally:
        os.close(fd)


def _may_be_emulated(exe: str | None, cmdline: list[str]) -> bool:
    """Cheap pre-check before :func:`detect` (which parses names): any QEMU/Rosetta hint."""
    for text in (exe or "", cmdline[0] if cmdline else ""):
        if "qemu" in text or "rosetta" in text or "-binfmt-P" in text:
            return True
    return False


def _gone(exc: OSError) -> bool:
    return isinstance(exc, FileNotFoundError | ProcessLookupError) or exc.errno == errno.ESRCH


class HostScanner:
    """Scans one /proc; keep one per host so CPU deltas and per-process caches carry over."""

    def __init__(
        self,
        host: str = "host",
        *,
        proc: str = "/proc",
        container_names: ContainerNames | None = None,
        binfmt_refresh: float = 30.0,
        keep_files: bool = True,
    ) -> None:
        self.host = host
        self.proc = proc
        self.names = container_names if container_names is not None else ContainerNames()
        self._static: dict[tuple[int, int], Static] = {}
        self._prev: dict[int, Proc] = {}
        self._raw: dict[int, bytes] = {}
        self._stats = StatReader(proc, None if keep_files else 0)
        self._lock = threading.Lock()  # one scan at a time; close() waits for it
        self._prev_mono: float | None = None
        self._users = _Users()
        self._boot_time = self._read_btime()  # (what psutil.boot_time reads on Linux)
        self._binfmt_refresh = binfmt_refresh
        self._binfmt_at = -1e9
        self._preserve: dict[str, bool] = {}

    def close(self) -> None:
        """Release the kept /proc files (the scanner still works afterwards, reopening them)."""
        with self._lock:
            self._stats.close()

    def _read_btime(self) -> float:
        for line in _read(f"{self.proc}/stat").decode().splitlines():
            if line.startswith("btime "):
                return float(line.split()[1])
        return 0.0

    def _preserve_map(self) -> dict[str, bool]:
        now = time.monotonic()
        if now - self._binfmt_at > self._binfmt_refresh:
            self._binfmt_at = now
            self._preserve = binfmt.read_registry().preserve_argv0_map()
        return self._preserve

    def _read_static(self, pid: int, comm: str, flags: int, state: str) -> Static | None:
        """Read what changes only on exec; None if the process vanished meanwhile.

        A live process with an empty cmdline is caught inside execve (the new comm is set
        before the new argv is): it is marked unsettled, read again on the next scan, and not
        judged as emulated or not until then.
        """
        base = f"{self.proc}/{pid}"
        if flags & PF_KTHREAD:
            return Static(comm=comm, cmdline=[], uid=0, user=self._users.name(0), kernel=True)
        try:
            raw = _read(f"{base}/cmdline")
        except OSError as exc:
            if _gone(exc):
                return None
            raw = b""
        cmdline = raw.decode("utf-8", "replace").split("\0")
        if cmdline and cmdline[-1] == "":
            cmdline.pop()
        st = Static(comm=comm, cmdline=cmdline)
        if not cmdline and state != "Z":
            st.settled = False
        try:
            exe = os.readlink(f"{base}/exe")
            st.exe = exe[: -len(" (deleted)")] if exe.endswith(" (deleted)") else exe
        except OSError as exc:
            if isinstance(exc, ProcessLookupError):
                return None
        try:
            for line in _read(f"{base}/status", 1024).split(b"\n"):  # Uid is line 9
                if line.startswith(b"Uid:"):
                    st.uid = int(line.split()[2])  # effective uid, as ps and top show
                    st.user = self._users.name(st.uid)
                    break
        except OSError as exc:
            if _gone(exc):
                return None
        if cmdline and "containerd-shim" in cmdline[0]:
            st.shim_container = shim_container_id(cmdline)
            st.runtime = True
        elif cmdline and os.path.basename(cmdline[0]) == "conmon":
            st.runtime = True
        if st.settled and _may_be_emulated(st.exe, cmdline):
            st.emulated = detect(
                st.exe,
                cmdline,
                root=f"{base}/root",
                cwd=f"{base}/cwd",
                preserve_argv0=self._preserve_map(),
            )
        return st

    def _read_cgroups(self, procs: list[Proc]) -> None:
        """Container ids from cgroups of processes not read yet (costly on cgroup v1: only
        done while a container runtime runs, else nothing can be in a container)."""
        for p in procs:
            st = p.static
            if st.cgroup_read or st.kernel:
                continue
            st.cgroup_read = True
            with contextlib.suppress(OSError):
                st.cgroup_container = container_id_from_cgroup(
                    _read(f"{self.proc}/{p.pid}/cgroup", 16384).decode("utf-8", "replace")
                )

    def scan(self) -> Snapshot:
        """One pass over /proc; CPU % relative to the previous scan of this scanner."""
        with self._lock:
            return self._scan()

    def _scan(self) -> Snapshot:
        mono = time.monotonic()
        wall = time.time()
        proc = self.proc
        try:
            uptime = float(_read(f"{proc}/uptime").split()[0])
        except (OSError, ValueError, IndexError):
            uptime = wall - self._boot_time
        dt = mono - self._prev_mono if self._prev_mono is not None else None
        prev = self._prev
        prev_raw = self._raw
        raw: dict[int, bytes] = {}
        cache = self._static
        seen: dict[tuple[int, int], Static] = {}
        procs: list[Proc] = []
        boot = self._boot_time
        tree_changed = False
        runtime = False
        read_stat = self._stats.read
        for entry in os.listdir(proc):
            if not entry.isdigit():
                continue
            pid = int(entry)
            data = read_stat(pid, entry)
            if data is None:
                continue  # vanished (or hidden): not in this snapshot
            raw[pid] = data
            old = prev.get(pid)
            if (
                old is not None
                and old.cpu_percent == 0.0
                and old.static.settled
                and prev_raw.get(pid) == data
            ):
                # Nothing moved (no CPU, same state, RSS, parent): carry the object over.
                seen[(pid, old.start_ticks)] = old.static
                procs.append(old)
                runtime = runtime or old.static.runtime
                continue
            close = data.rfind(b")")
            if close < 0:
                continue
            comm = data[data.find(b"(") + 1 : close].decode("utf-8", "replace")
            f = data[close + 2 :].split()
            try:
                state = f[0].decode()
                ppid = int(f[1])
                flags = int(f[6])
                cpu_ticks = int(f[11]) + int(f[12])
                start_ticks = int(f[19])
                rss = int(f[21]) * PAGE_SIZE
            except (IndexError, ValueError):
                continue
            key = (pid, start_ticks)
            st = cache.get(key)
            if st is None or st.comm != comm or not st.settled:
                st = self._read_static(pid, comm, flags, state)
                if st is None:
                    continue
            seen[key] = st
            runtime = runtime or st.runtime
            same = old if old is not None and old.start_ticks == start_ticks else None
            if same is None or same.raw_ppid != ppid:
                tree_changed = True
            pct = cpu_percent(
                cpu_ticks,
                start_ticks,
                CLK_TCK,
                prev_ticks=same.cpu_ticks if same is not None else None,
                dt=dt,
                uptime=uptime,
            )
            procs.append(
                Proc(
                    pid=pid,
                    ppid=ppid,
                    start_ticks=start_ticks,
                    start_time=boot + start_ticks / CLK_TCK,
                    state=state,
                    cpu_ticks=cpu_ticks,
                    rss_bytes=rss,
                    static=st,
                    cpu_percent=pct,
                )
            )
        if len(procs) != len(prev):
            tree_changed = True
        self._static = seen
        self._raw = raw
        self._stats.sweep(raw)
        if runtime:
            self._read_cgroups(procs)
        ordered = link(procs, self.names, prev, tree_changed)
        self._prev = ordered
        self._prev_mono = mono
        return Snapshot(host=self.host, procs=ordered, taken_at=wall, interval=dt, clock=mono)


def _psutil_snapshot(host: str = "host") -> Snapshot:
    """Portable fallback (no /proc): one psutil pass, lifetime-average CPU %."""
    import psutil

    procs: list[Proc] = []
    attrs = ["pid", "ppid", "name", "status", "cpu_times", "memory_info", "create_time"]
    attrs += ["cmdline", "exe", "username", "uids"]
    now = time.time()
    for p in psutil.process_iter(attrs, ad_value=None):
        info = p.info
        if info.get("create_time") is None:
            continue
        cmdline = info.get("cmdline") or []
        times = info.get("cpu_times")
        cpu = (times.user + times.system) if times else 0.0
        age = max(now - info["create_time"], 0.01)
        mem = info.get("memory_info")
        uids = info.get("uids")
        st = Static(
            comm=info.get("name") or "",
            cmdline=cmdline,
            exe=info.get("exe") or None,
            uid=uids.effective if uids else None,
            user=info.get("username"),
            emulated=detect(info.get("exe") or None, cmdline),
        )
        procs.append(
            Proc(
                pid=info["pid"],
                ppid=info.get("ppid") or 0,
                start_ticks=int(info["create_time"] * 100),
                start_time=info["create_time"],
                state=(info.get("status") or "?")[:1].upper(),
                cpu_ticks=int(cpu * 100),
                rss_bytes=mem.rss if mem else 0,
                static=st,
                cpu_percent=cpu / age * 100.0,
            )
        )
    return Snapshot(host=host, procs=link(procs, None))


def snapshot() -> Snapshot:
    """One scan of the host (CPU % is each process's lifetime average, like ``ps``)."""
    if sys.platform.startswith("linux") and os.path.exists("/proc/self/stat"):
        return HostScanner(keep_files=False).scan()
    return _psutil_snapshot()


# --- the event source ------------------------------------------------------------------------


class ProcessSource:
    """Host processes as events: a full ProcessDiff first, then a diff every ``interval``."""

    def __init__(self, interval: float = 1.0, host: str = "host") -> None:
        self.name = f"processes:{host}"
        self.host = host
        self.interval = interval
        self.scanner = HostScanner(host)
        self._primed: Snapshot | None = None

    def prime(self) -> None:
        """Take the first scan now, in the caller's thread (the dashboard does while Textual
        builds its screen): :meth:`run` emits it at once instead of scanning first."""
        self._primed = self.scanner.scan()

    async def run(self, emit: Emit) -> None:
        """Scan in a worker thread each interval until cancelled; never overlaps scans."""
        import asyncio

        loop = asyncio.get_running_loop()
        prev, self._primed = self._primed, None
        unavailable = False
        try:
            if prev is not None:
                emit(diff(None, prev))
                age = time.monotonic() - prev.clock if prev.clock is not None else 0.0
                await asyncio.sleep(max(0.0, self.interval - age))
            while True:
                started = loop.time()
                try:
                    snap = await asyncio.to_thread(self.scanner.scan)
                except Exception as exc:  # noqa: BLE001 - report it (once) and keep trying
                    if not unavailable:
                        emit(ProcessesUnavailable(host=self.host, reason=f"scan failed: {exc}"))
                    unavailable = True
                    prev = None  # the next good scan is a full one
                else:
                    emit(diff(prev, snap))
                    prev = snap
                    unavailable = False
                await asyncio.sleep(max(0.0, self.interval - (loop.time() - started)))
        finally:
            self.scanner.close()  # waits for a scan still running in its thread
