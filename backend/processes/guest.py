"""Guest process snapshots over SSH: a /proc walk in busybox ``sh`` and its parser.

The guest may have nothing but busybox, so the walk is three programs for the whole tree, not
per process: ``ls -ldn`` (owners and exe links) and one ``head`` over every stat, cmdline and
cgroup file (``head`` prints ``==> FILE <==`` before each), plus uptime, btime, /etc/passwd and
the guest's binfmt_misc entries (for the P flag). CPU % is computed between two walks from the
guest's own uptime, so SSH latency does not skew it. The same round trip reads the guest's own
CPU (/proc/stat) and memory (/proc/meminfo) for its resource graphs (:class:`GuestLoad`).
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from envdeck.backend.errors import EnvdeckError, NotFound, UserInputError
from envdeck.backend.events import ProcessesUnavailable, ResourceStats, StatsFigures
from envdeck.backend.processes import binfmt
from envdeck.backend.processes.cgroups import container_id_from_cgroup, shim_container_id
from envdeck.backend.processes.emulation import detect
from envdeck.backend.processes.model import PF_KTHREAD, Proc, Snapshot, Static, cpu_percent
from envdeck.backend.processes.tree import diff, link
from envdeck.backend.sources import Emit

GUEST_CLK_TCK = 100  # USER_HZ: 100 on every architecture a guest runs here

WALK_MARK = "@@envdeck-walk"  # in the walk's own command line: how its processes are left out
GUEST_WALK_SCRIPT = r"""exec 2>/dev/null
cd / || exit 1
echo "@@envdeck-walk 1"
echo "@@pagesize $(getconf PAGESIZE || echo 4096)"
ls -ldn /proc/[0-9]* /proc/[0-9]*/exe
echo "@@heads"
head -c 131072 /proc/uptime /proc/stat /proc/meminfo /etc/passwd /proc/sys/fs/binfmt_misc/* \
  /proc/[0-9]*/stat /proc/[0-9]*/cmdline /proc/[0-9]*/cgroup
exit 0
"""

_HEADER = re.compile(r"(?:^|\n)==> (/[^\n]*?) <==\n")
_LS_DIR = re.compile(r"^d\S*\s+\d+\s+(\d+)\s+\d+\s+.*\s/proc/(\d+)$")
_LS_EXE = re.compile(r"^l\S*\s+.*\s/proc/(\d+)/exe(?: -> (.*))?$")
_PROC_FILE = re.compile(r"^/proc/(\d+)/(stat|cmdline|cgroup)$")


class GuestWalkError(ValueError):
    """The text is not the output of GUEST_WALK_SCRIPT."""


def _int(text: str, default: int) -> int:
    try:
        return int(text.strip())
    except ValueError:
        return default


def _split_heads(text: str) -> dict[str, str]:
    parts = _HEADER.split(text)
    # parts: [preamble, name1, body1, name2, body2, ...]
    return {parts[i]: parts[i + 1] for i in range(1, len(parts) - 1, 2)}


def _users(passwd: str) -> dict[int, str]:
    users: dict[int, str] = {}
    for line in passwd.splitlines():
        fields = line.split(":")
        if len(fields) > 2 and (uid := _int(fields[2], -1)) >= 0:
            users.setdefault(uid, fields[0])
    return users


def _parse_stat(text: str) -> tuple[str, str, int, int, int, int, int] | None:
    """(comm, state, ppid, flags, cpu_ticks, start_ticks, rss_pages) from one stat line."""
    close = text.rfind(")")
    if close < 0:
        return None
    comm = text[text.find("(") + 1 : close]
    f = text[close + 2 :].split()
    try:
        return (comm, f[0], int(f[1]), int(f[6]), int(f[11]) + int(f[12]), int(f[19]), int(f[21]))
    except (IndexError, ValueError):
        return None


def _own_walk(files: dict[int, dict[str, str]]) -> set[int]:
    """The pids of this walk: the ``sh`` running :data:`GUEST_WALK_SCRIPT` and its children."""
    own = {pid for pid, parts in files.items() if WALK_MARK in parts.get("cmdline", "")}
    parents = {
        pid: stat[2] for pid, parts in files.items() if (stat := _parse_stat(parts.get("stat", "")))
    }
    grew = bool(own)
    while grew:
        more = {pid for pid, ppid in parents.items() if ppid in own and pid not in own}
        own |= more
        grew = bool(more)
    return own


def parse_guest_walk(
    text: str,
    host: str = "guest",
    *,
    previous: Snapshot | None = None,
    container_name: Callable[[str], str | None] | None = None,
) -> Snapshot:
    """Parse the output of :data:`GUEST_WALK_SCRIPT` into a Snapshot of the guest.

    ``previous`` (the last snapshot of the same guest) gives CPU % deltas; without it CPU % is
    each process's lifetime average. ``container_name`` maps a container id to a name (the
    guest's docker, through the containers backend), else rows show the short id.
    """
    if "@@envdeck-walk 1" not in text:
        raise GuestWalkError("not a guest /proc walk (did the script run under sh?)")
    pre, _, heads_text = text.partition("@@heads\n")
    page = 4096
    owners: dict[int, int] = {}
    exes: dict[int, str | None] = {}
    for line in pre.splitlines():
        if line.startswith("@@pagesize "):
            page = _int(line[len("@@pagesize ") :], 4096)
        elif m := _LS_DIR.match(line):
            owners[int(m.group(2))] = int(m.group(1))
        elif m := _LS_EXE.match(line):
            exes[int(m.group(1))] = m.group(2)
    heads = _split_heads("\n" + heads_text)
    try:
        uptime = float(heads.get("/proc/uptime", "").split()[0])
    except (IndexError, ValueError):
        uptime = None
    btime = 0.0
    for line in heads.get("/proc/stat", "").splitlines():
        if line.startswith("btime "):
            btime = float(_int(line[len("btime ") :], 0))
    users = _users(heads.get("/etc/passwd", ""))
    preserve: dict[str, bool] = {}
    for name, body in heads.items():
        if name.startswith("/proc/sys/fs/binfmt_misc/"):
            entry = name.rsplit("/", 1)[1]
            if entry not in ("status", "register"):
                handler = binfmt.parse_entry(entry, body)
                preserve[handler.interpreter] = handler.preserve_argv0
    files: dict[int, dict[str, str]] = {}
    for name, body in heads.items():
        if m := _PROC_FILE.match(name):
            files.setdefault(int(m.group(1)), {})[m.group(2)] = body
    for pid in _own_walk(files):
        del files[pid]  # envdeck's probe is not the guest's work (and its CPU is ours)
    prev_procs = previous.procs if previous is not None else {}
    prev_clock = previous.clock if previous is not None else None
    dt = uptime - prev_clock if uptime is not None and prev_clock is not None else None
    procs: list[Proc] = []
    for pid, parts in files.items():
        stat = _parse_stat(parts.get("stat", ""))
        if stat is None:
            continue  # vanished between ls and head
        comm, state, ppid, flags, cpu_ticks, start_ticks, rss_pages = stat
        uid = owners.get(pid)
        old = prev_procs.get(pid)
        if old is not None and old.start_ticks == start_ticks and old.static.comm == comm:
            st = old.static
        else:
            st = _static(comm, flags, parts, exes.get(pid), uid, users, preserve)
        same = old if old is not None and old.start_ticks == start_ticks else None
        pct = cpu_percent(
            cpu_ticks,
            start_ticks,
            GUEST_CLK_TCK,
            prev_ticks=same.cpu_ticks if same is not None else None,
            dt=dt,
            uptime=uptime,
        )
        procs.append(
            Proc(
                pid=pid,
                ppid=ppid,
                start_ticks=start_ticks,
                start_time=btime + start_ticks / GUEST_CLK_TCK,
                state=state,
                cpu_ticks=cpu_ticks,
                rss_bytes=rss_pages * page,
                static=st,
                cpu_percent=pct,
            )
        )
    names = _Labeler(container_name)
    return Snapshot(host=host, procs=link(procs, names), interval=dt, clock=uptime)


def _static(
    comm: str,
    flags: int,
    parts: dict[str, str],
    exe: str | None,
    uid: int | None,
    users: dict[int, str],
    preserve: dict[str, bool],
) -> Static:
    user = (users.get(uid) or str(uid)) if uid is not None else None
    if flags & PF_KTHREAD:
        return Static(comm=comm, cmdline=[], uid=uid, user=user, kernel=True)
    raw = parts.get("cmdline", "")
    cmdline = raw.split("\0")
    if cmdline and cmdline[-1] == "":
        cmdline.pop()
    if exe and exe.endswith(" (deleted)"):
        exe = exe[: -len(" (deleted)")]
    return Static(
        comm=comm,
        cmdline=cmdline,
        exe=exe,
        uid=uid,
        user=user,
        cgroup_container=container_id_from_cgroup(parts.get("cgroup", "")),
        shim_container=shim_container_id(cmdline),
        # The program's ELF header is in the guest, not here: the arch comes from the name.
        emulated=detect(exe, cmdline, preserve_argv0=preserve, read_elf=False),
    )


@dataclass(frozen=True)
class GuestLoad:
    """The guest's whole-machine CPU ticks and memory at one walk."""

    uptime: float
    busy_ticks: int  # every CPU's ticks but idle and iowait
    memory_total: int | None
    memory_available: int | None


def parse_guest_load(text: str) -> GuestLoad | None:
    """The guest's load from a walk's output (None when /proc/stat or the uptime is missing)."""
    heads = _split_heads("\n" + text.partition("@@heads\n")[2])
    try:
        uptime = float(heads.get("/proc/uptime", "").split()[0])
    except (IndexError, ValueError):
        return None
    busy = None
    for line in heads.get("/proc/stat", "").splitlines():
        if line.startswith("cpu "):
            ticks = [_int(t, 0) for t in line.split()[1:]]
            busy = sum(ticks[:8]) - sum(ticks[3:5])  # user..steal, less idle and iowait
            break
    if busy is None:
        return None
    memory: dict[str, int] = {}
    for line in heads.get("/proc/meminfo", "").splitlines():
        key, _, value = line.partition(":")
        if key in ("MemTotal", "MemAvailable"):
            memory[key] = _int(value.split()[0], 0) * 1024 if value.split() else 0
    return GuestLoad(uptime, busy, memory.get("MemTotal"), memory.get("MemAvailable"))


def guest_load_figures(
    instance: str, before: GuestLoad | None, now: GuestLoad
) -> StatsFigures | None:
    """The guest's CPU % (100 = one guest core) between two walks, and its memory in use."""
    figures: StatsFigures = {"subject": f"instance:{instance}"}
    seconds = now.uptime - before.uptime if before is not None else 0.0
    if before is not None and seconds > 0 and now.busy_ticks >= before.busy_ticks:
        busy = (now.busy_ticks - before.busy_ticks) / GUEST_CLK_TCK
        figures["guest_cpu_percent"] = round(busy / seconds * 100.0, 1)
    if now.memory_total is not None and now.memory_available is not None:
        figures["guest_memory_bytes"] = max(now.memory_total - now.memory_available, 0)
        figures["guest_memory_total_bytes"] = now.memory_total
    return figures if len(figures) > 1 else None


class _Labeler:
    """Adapts an optional id -> name callable to what processes.link expects."""

    def __init__(self, lookup: Callable[[str], str | None] | None) -> None:
        self._lookup = lookup

    def label(self, cid: str | None) -> str | None:
        if cid is None:
            return None
        name = self._lookup(cid) if self._lookup is not None else None
        return name or cid[:12]


RunCommand = Callable[[str], Awaitable[str]]


class GuestProcessSource:
    """An instance's processes as events, walked over SSH every ``interval`` seconds.

    ``run_command(script)`` runs a shell script in the guest and returns its stdout (the SSH
    layer provides it). When it raises, a ProcessesUnavailable is emitted (once per outage) and
    the next successful walk is sent as a full diff, so a stale tree is never shown as live.
    """

    def __init__(
        self,
        instance: str,
        run_command: RunCommand,
        *,
        interval: float = 2.0,
        timeout: float = 10.0,
        container_name: Callable[[str], str | None] | None = None,
    ) -> None:
        self.name = f"processes:{instance}"
        self.instance = instance
        self.run_command = run_command
        self.interval = interval
        self.timeout = timeout
        self.container_name = container_name

    async def walk(self, previous: Snapshot | None = None) -> Snapshot:
        """One walk of the guest (raises what run_command raises, or GuestWalkError)."""
        return (await self._walk(previous))[0]

    async def _walk(self, previous: Snapshot | None) -> tuple[Snapshot, GuestLoad | None]:
        text = await asyncio.wait_for(self.run_command(GUEST_WALK_SCRIPT), self.timeout)
        snap = parse_guest_walk(
            text, self.instance, previous=previous, container_name=self.container_name
        )
        return snap, parse_guest_load(text)

    async def run(self, emit: Emit) -> None:
        """Walk until cancelled; emit diffs and the guest's load, or ProcessesUnavailable while
        the guest is away."""
        loop = asyncio.get_running_loop()
        prev: Snapshot | None = None
        prev_load: GuestLoad | None = None
        unavailable = False
        while True:
            started = loop.time()
            try:
                snap, load = await self._walk(prev)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - SSH down, timeout, garbage: "unavailable"
                if not unavailable:
                    reason = str(exc) or type(exc).__name__
                    emit(ProcessesUnavailable(host=self.instance, reason=reason))
                unavailable = True
                prev = prev_load = None
            else:
                emit(diff(prev, snap))
                if load is not None:
                    figures = guest_load_figures(self.instance, prev_load, load)
                    if figures is not None:
                        emit(ResourceStats(source=self.instance, figures=[figures]))
                prev, prev_load = snap, load
                unavailable = False
            await asyncio.sleep(max(0.0, self.interval - (loop.time() - started)))


GUEST_SIGNALS = frozenset({"TERM", "KILL", "INT", "HUP", "STOP", "CONT", "USR1", "USR2"})


def guest_signal_script(pid: int, start_ticks: int, sig: str = "TERM") -> str:
    """A sh script that signals ``pid`` only if its start time (clock ticks) still matches."""
    if sig not in GUEST_SIGNALS:
        raise UserInputError(f"unknown signal {sig!r}", hint=", ".join(sorted(GUEST_SIGNALS)))
    pid, start_ticks = int(pid), int(start_ticks)
    if pid <= 1:
        raise UserInputError(f"refusing to signal pid {pid}")
    return (
        f"s=$(cat /proc/{pid}/stat 2>/dev/null) || {{ echo @@gone; exit 0; }}\n"
        "set -- ${s##*) }\n"
        f'[ "${{20}}" = "{start_ticks}" ] || {{ echo @@reused; exit 0; }}\n'
        f"kill -s {sig} {pid} 2>/dev/null && echo @@sent || echo @@denied\n"
    )


async def guest_send_signal(
    run_command: RunCommand, pid: int, start_ticks: int, sig: str = "TERM"
) -> None:
    """Signal a guest process, pinned to its start time (a row's ``start_ticks``).

    Raises NotFound when it is gone or its pid now names another process, EnvdeckError when
    the guest refuses (permission).
    """
    check_signal_result(await run_command(guest_signal_script(pid, start_ticks, sig)), pid)


def check_signal_result(out: str, pid: int) -> None:
    """Turn the output of :func:`guest_signal_script` into success or NotFound/EnvdeckError."""
    if "@@sent" in out:
        return
    if "@@gone" in out:
        raise NotFound(f"process {pid} is gone")
    if "@@reused" in out:
        raise NotFound(
            f"process {pid} is gone (the pid now belongs to another process)",
            hint="refresh the list and pick the process again",
        )
    raise EnvdeckError(f"the guest refused to signal process {pid}", hint=out.strip() or None)
