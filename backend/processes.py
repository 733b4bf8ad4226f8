"""Host process snapshots: a lean /proc scanner, tree order, diffs, and safe signals.

Per tick the scanner reads only ``/proc/PID/stat`` (state, ppid, CPU ticks, RSS, start time,
comm). The command line, exe link, user, cgroup and emulation verdict are read once per
``(pid, start time, comm)``: they change only on exec (which changes comm). CPU % is the tick
delta between two snapshots over the wall time between them (per core: 100 = one full core);
a process new to the scanner gets its lifetime average, as ``ps`` shows. Processes that vanish
mid-scan are dropped, kernel threads and zombies are kept, AccessDenied leaves a field None, and
a parent younger than its child (a reused PID) is not taken as the parent.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import signal
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

import psutil

from . import binfmt
from .emulation import detect
from .errors import EnvdeckError, NotFound, UserInputError
from .events import ProcessDiff, ProcessesUnavailable
from .processes_containers import ContainerNames, container_id_from_cgroup, shim_container_id
from .sources import Emit

CLK_TCK: int = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
PAGE_SIZE: int = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096
PF_KTHREAD = 0x00200000
_START_TOLERANCE = 0.05  # seconds: start times are derived from clock ticks (1/100 s)


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
    emulated: dict | None = None


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

    def row(self) -> dict[str, Any]:
        """The plain-JSON row (the keys of ``envdeck ps --json``)."""
        st = self.static
        emulated = None
        if st.emulated is not None:
            emulated = {k: v for k, v in st.emulated.items()}
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

    def rows(self) -> list[dict[str, Any]]:
        """Every row, in tree order."""
        return [p.row() for p in self.procs.values()]

    def summary(self) -> dict[str, Any]:
        """Totals: processes, emulated count and CPU share, per container and per arch."""
        return summarize(self.procs.values(), self.interval)


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


# --- tree ------------------------------------------------------------------------------------


def tree_walk(
    nodes: Iterable[tuple[int, int, int]],
) -> list[tuple[int, int, int]]:
    """Tree order of ``(pid, ppid, start)`` triples: ``[(pid, depth, effective_ppid)]``.

    A parent counts only if it exists and did not start after the child (else its PID was
    reused: the child becomes a root with effective ppid 0). A root whose parent is simply
    absent keeps its ppid. Siblings are ordered by pid;
    anything unreachable (a cycle in bad data) is appended as a root, so no process is lost.
    """
    items = sorted(nodes)
    start_of = {pid: start for pid, _, start in items}
    children: dict[int, list[int]] = {}
    roots: list[int] = []
    parent_of: dict[int, int] = {}
    for pid, ppid, start in items:
        pstart = start_of.get(ppid)
        if ppid != pid and pstart is not None and pstart <= start:
            children.setdefault(ppid, []).append(pid)
            parent_of[pid] = ppid
        else:
            roots.append(pid)
            # Absent parent (outside this pid namespace, or pid 0): keep what the kernel said.
            # Present but younger: that pid was reused, it is not the parent.
            parent_of[pid] = 0 if pstart is not None else ppid
    out: list[tuple[int, int, int]] = []
    seen: set[int] = set()

    def walk(root: int) -> None:
        stack = [(root, 0)]
        while stack:
            pid, depth = stack.pop()
            if pid in seen:
                continue
            seen.add(pid)
            out.append((pid, depth, parent_of[pid]))
            for child in reversed(children.get(pid, ())):
                stack.append((child, depth + 1))

    for root in roots:
        walk(root)
    for pid, _, _ in items:
        if pid not in seen:  # only reachable through a cycle
            walk(pid)
    return out


def tree_order(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows (``envdeck ps --json`` dicts) in tree order with ``depth`` set, for UIs applying diffs."""
    by_pid = {r["pid"]: r for r in rows}
    walked = tree_walk((r["pid"], r["ppid"], int(r.get("start_time") or 0) * 100) for r in rows)
    out = []
    for pid, depth, _ in walked:
        row = by_pid[pid]
        row["depth"] = depth
        out.append(row)
    return out


class Labeler(Protocol):
    """Turns a container id into what a row shows (ContainerNames is one)."""

    def label(self, cid: str | None) -> str | None: ...


def link(
    procs: list[Proc],
    names: Labeler | None,
    prev: dict[int, Proc] | None = None,
    tree_changed: bool = True,
) -> dict[int, Proc]:
    """Order ``procs`` as a tree; set depth, effective ppid and container attribution.

    ``prev`` is the previous snapshot's processes: a Proc object carried over from it unchanged
    is copied before any change, so the previous snapshot stays intact for diffing. With
    ``tree_changed=False`` (same pids, start times and parents as ``prev``) the previous order
    and depths are reused instead of walking the tree again.
    """
    prev = prev or {}
    by_pid = {p.pid: p for p in procs}
    ordered: dict[int, Proc] = {}
    if not tree_changed and prev.keys() == by_pid.keys():
        for pid, old in prev.items():
            p = by_pid[pid]
            if p is not old:
                p.depth, p.ppid = old.depth, old.ppid
                p.container_id, p.container = old.container_id, old.container
            if p.container_id is not None and names is not None:
                label = names.label(p.container_id)
                if label != p.container:
                    p = replace(p, container=label) if p is old else p
                    p.container = label
            ordered[pid] = p
        return ordered
    for pid, depth, ppid in tree_walk((p.pid, p.raw_ppid, p.start_ticks) for p in procs):
        p = by_pid[pid]
        cid = p.static.cgroup_container
        if cid is None and depth:
            parent = by_pid[ppid]
            cid = parent.static.shim_container or parent.container_id
        label = None
        if cid is not None:
            label = names.label(cid) if names is not None else cid[:12]
        if (p.depth, p.ppid, p.container_id, p.container) != (depth, ppid, cid, label):
            if prev.get(pid) is p:
                p = by_pid[pid] = replace(p)
            p.depth, p.ppid, p.container_id, p.container = depth, ppid, cid, label
        ordered[pid] = p
    return ordered


# --- diff ------------------------------------------------------------------------------------


def diff(old: Snapshot | None, new: Snapshot) -> ProcessDiff:
    """Added / changed / removed between two snapshots of one host (full when ``old`` is None).

    A PID that now names a different process (other start time) is in ``removed`` and
    ``added``: apply removals first. ``changed`` rows are whole rows.
    """
    if old is None:
        return ProcessDiff(host=new.host, full=True, added=new.rows(), summary=new.summary())
    added: list[dict[str, Any]] = []
    changed: list[dict[str, Any]] = []
    removed: list[int] = []
    old_procs = old.procs
    for pid, p in new.procs.items():
        o = old_procs.get(pid)
        if o is p:
            continue  # carried over unchanged by the scanner
        if o is None:
            added.append(p.row())
        elif o.start_ticks != p.start_ticks:
            removed.append(pid)
            added.append(p.row())
        elif o.static is not p.static or o.dynamic() != p.dynamic():
            changed.append(p.row())
    removed.extend(pid for pid in old_procs if pid not in new.procs)
    return ProcessDiff(
        host=new.host, added=added, changed=changed, removed=removed, summary=new.summary()
    )


# --- the host scanner ----------------------------------------------------------------------------


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


def _read(path: str, limit: int = 1 << 17) -> bytes:
    fd = os.open(path, os.O_RDONLY)
    try:
        chunks = []
        size = 0
        while size < limit:
            chunk = os.read(fd, 65536)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


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
    ) -> None:
        self.host = host
        self.proc = proc
        self.names = container_names if container_names is not None else ContainerNames()
        self._static: dict[tuple[int, int], Static] = {}
        self._prev: dict[int, Proc] = {}
        self._raw: dict[int, bytes] = {}
        self._prev_mono: float | None = None
        self._users = _Users()
        self._boot_time = psutil.boot_time() if proc == "/proc" else self._read_btime()
        self._binfmt_refresh = binfmt_refresh
        self._binfmt_at = -1e9
        self._preserve: dict[str, bool] = {}

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

    def _read_static(self, pid: int, comm: str, flags: int) -> Static | None:
        """Read what changes only on exec; None if the process vanished meanwhile."""
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
        try:
            exe = os.readlink(f"{base}/exe")
            st.exe = exe[: -len(" (deleted)")] if exe.endswith(" (deleted)") else exe
        except OSError as exc:
            if isinstance(exc, ProcessLookupError):
                return None
        try:
            for line in _read(f"{base}/status", 4096).split(b"\n"):
                if line.startswith(b"Uid:"):
                    st.uid = int(line.split()[2])  # effective uid, as ps and top show
                    st.user = self._users.name(st.uid)
                    break
        except OSError as exc:
            if _gone(exc):
                return None
        with contextlib.suppress(OSError):
            st.cgroup_container = container_id_from_cgroup(
                _read(f"{base}/cgroup", 16384).decode("utf-8", "replace")
            )
        st.shim_container = shim_container_id(cmdline)
        st.emulated = detect(
            st.exe,
            cmdline,
            root=f"{base}/root",
            cwd=f"{base}/cwd",
            preserve_argv0=self._preserve_map(),
        )
        return st

    def scan(self) -> Snapshot:
        """One pass over /proc; CPU % relative to the previous scan of this scanner."""
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
        for entry in os.listdir(proc):
            if not entry.isdigit():
                continue
            pid = int(entry)
            try:
                fd = os.open(f"{proc}/{entry}/stat", os.O_RDONLY)
                try:
                    data = os.read(fd, 4096)  # procfs returns the whole line in one read
                finally:
                    os.close(fd)
            except OSError:
                continue  # vanished (or hidden): not in this snapshot
            raw[pid] = data
            old = prev.get(pid)
            if old is not None and old.cpu_percent == 0.0 and prev_raw.get(pid) == data:
                # Nothing moved (no CPU, same state, RSS, parent): carry the object over.
                seen[(pid, old.start_ticks)] = old.static
                procs.append(old)
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
            if st is None or st.comm != comm:
                st = self._read_static(pid, comm, flags)
                if st is None:
                    continue
            seen[key] = st
            if old is not None and old.start_ticks == start_ticks:
                if old.raw_ppid != ppid:
                    tree_changed = True
                pct = (cpu_ticks - old.cpu_ticks) / CLK_TCK / dt * 100.0 if dt else 0.0
            else:
                tree_changed = True
                age = uptime - start_ticks / CLK_TCK
                pct = (cpu_ticks / CLK_TCK) / age * 100.0 if age > 0.01 else 0.0
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
                    cpu_percent=max(pct, 0.0),
                )
            )
        if len(procs) != len(prev):
            tree_changed = True
        self._static = seen
        self._raw = raw
        ordered = link(procs, self.names, prev, tree_changed)
        self._prev = ordered
        self._prev_mono = mono
        return Snapshot(host=self.host, procs=ordered, taken_at=wall, interval=dt, clock=mono)


def _psutil_snapshot(host: str = "host") -> Snapshot:
    """Portable fallback (no /proc): one psutil pass, lifetime-average CPU %."""
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
        return HostScanner().scan()
    return _psutil_snapshot()


# --- the event source ------------------------------------------------------------------------


class ProcessSource:
    """Host processes as events: a full ProcessDiff first, then a diff every ``interval``."""

    def __init__(self, interval: float = 1.0, host: str = "host") -> None:
        self.name = f"processes:{host}"
        self.host = host
        self.interval = interval
        self.scanner = HostScanner(host)

    async def run(self, emit: Emit) -> None:
        """Scan in a worker thread each interval until cancelled; never overlaps scans."""
        loop = asyncio.get_running_loop()
        prev: Snapshot | None = None
        unavailable = False
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


# --- signals -----------------------------------------------------------------------------------


def read_start_time(pid: int, proc: str = "/proc") -> float:
    """The start time (epoch seconds) of ``pid`` as the scanner computes it; NotFound if gone."""
    try:
        data = _read(f"{proc}/{pid}/stat", 4096)
    except OSError as exc:
        raise NotFound(f"no process with pid {pid}") from exc
    fields = data[data.rfind(b")") + 2 :].split()
    return psutil.boot_time() + int(fields[19]) / CLK_TCK


def _same_process(pid: int, start_time: float) -> None:
    try:
        actual = read_start_time(pid)
    except NotFound:
        raise NotFound(f"process {pid} is gone") from None
    if abs(actual - start_time) > _START_TOLERANCE:
        raise NotFound(
            f"process {pid} is gone (the pid now belongs to another process)",
            hint="refresh the list and pick the process again",
        )


def send_signal(pid: int, start_time: float, sig: int = signal.SIGTERM) -> None:
    """Send ``sig`` to ``pid`` only if it is still the process that started at ``start_time``.

    On Linux a pidfd pins the process between the check and the signal, so a PID reused in
    between is never hit. Raises NotFound (gone or reused), EnvdeckError (permission).
    """
    if pid <= 1:
        raise UserInputError(f"refusing to signal pid {pid}")
    if not sys.platform.startswith("linux") or not hasattr(os, "pidfd_open"):
        _portable_signal(pid, start_time, sig)
        return
    try:
        pidfd = os.pidfd_open(pid)
    except ProcessLookupError:
        raise NotFound(f"process {pid} is gone") from None
    except OSError:
        _portable_signal(pid, start_time, sig)
        return
    try:
        _same_process(pid, start_time)
        signal.pidfd_send_signal(pidfd, sig)
    except ProcessLookupError:
        raise NotFound(f"process {pid} is gone") from None
    except PermissionError as exc:
        raise EnvdeckError(
            f"not allowed to signal process {pid}",
            hint="it belongs to another user: run as that user or root",
        ) from exc
    finally:
        os.close(pidfd)


def _portable_signal(pid: int, start_time: float, sig: int) -> None:
    try:
        proc = psutil.Process(pid)
        if abs(proc.create_time() - start_time) > _START_TOLERANCE:
            raise NotFound(f"process {pid} is gone (the pid now belongs to another process)")
        proc.send_signal(sig)
    except psutil.NoSuchProcess:
        raise NotFound(f"process {pid} is gone") from None
    except psutil.AccessDenied as exc:
        raise EnvdeckError(f"not allowed to signal process {pid}") from exc

