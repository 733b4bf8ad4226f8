"""Reading /proc/PID/stat every tick with one syscall per process: keep the files open.

An open /proc/PID/stat refers to that task, not to the number: ``pread`` on it returns the
current line while the process exists and fails (ESRCH) once it is reaped, so a reused PID is
never read through an old descriptor. That turns open+read+close (with a path lookup) into a
single pread. Descriptors are capped well below RLIMIT_NOFILE; past the cap, files are opened
and closed per read as before.
"""

from __future__ import annotations

import contextlib
import os
import weakref

try:
    import resource
except ImportError:  # pragma: no cover - not on this platform
    resource = None  # type: ignore[assignment]


def default_budget() -> int:
    """How many stat files to keep open: the soft fd limit minus a generous reserve."""
    if resource is None:
        return 0
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        soft = 65536
    return max(0, min(65536, soft - 512))


class StatReader:
    """Per-pid cached descriptors of ``{proc}/PID/stat``."""

    def __init__(self, proc: str = "/proc", budget: int | None = None) -> None:
        self.proc = proc
        self.budget = default_budget() if budget is None else budget
        self._fds: dict[int, int] = {}
        # A scanner dropped without close() must not leak its descriptors (thousands of them
        # on a busy host would push a process past select()'s 1024 and the fd limit).
        self._finalizer = weakref.finalize(self, _close_all, self._fds)

    def read(self, pid: int, entry: str) -> bytes | None:
        """The stat line of ``pid`` (``entry`` is its /proc directory name), None if gone."""
        fd = self._fds.get(pid)
        if fd is not None:
            try:
                data = os.pread(fd, 4096, 0)
            except OSError:
                data = b""
            if data:
                return data
            # The task this descriptor held is gone; the pid may already name another one.
            del self._fds[pid]
            os.close(fd)
        try:
            fd = os.open(f"{self.proc}/{entry}/stat", os.O_RDONLY)
        except OSError:
            return None
        try:
            data = os.read(fd, 4096)  # procfs returns the whole line in one read
        except OSError:
            data = b""
        if data and len(self._fds) < self.budget:
            self._fds[pid] = fd
        else:
            os.close(fd)
        return data or None

    def sweep(self, alive: dict[int, bytes]) -> None:
        """Close the descriptors of pids not seen in the last scan."""
        if len(self._fds) <= len(alive) and all(pid in alive for pid in self._fds):
            return
        for pid in [p for p in self._fds if p not in alive]:
            with contextlib.suppress(OSError):
                os.close(self._fds.pop(pid))

    def close(self) -> None:
        """Close every kept descriptor."""
        _close_all(self._fds)

    def __len__(self) -> int:
        return len(self._fds)


def _close_all(fds: dict[int, int]) -> None:
    """Close and forget every descriptor in ``fds`` (shared by close() and the finalizer)."""
    while fds:
        _pid, fd = fds.popitem()
        with contextlib.suppress(OSError):
            os.close(fd)
