"""PID files that survive PID reuse: a pid is only 'ours' if its start time and command match."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import psutil

from envdeck.backend.store import InstanceDir, write_atomic


@dataclass(frozen=True)
class PidRecord:
    """A process we started: pid, its start time, and a marker its command line must contain.

    The command line is matched with a trailing space appended, so a marker ending in a space
    matches a whole last word ('agent dev ' does not match 'agent dev2').
    """

    pid: int
    start_time: float
    marker: str

    def save(self, path: Path) -> None:
        """Write the record atomically (0600)."""
        write_atomic(path, json.dumps(asdict(self)))

    @classmethod
    def of(cls, pid: int, marker: str) -> PidRecord:
        """Record the running process ``pid``."""
        return cls(pid, psutil.Process(pid).create_time(), marker)

    @classmethod
    def load(cls, path: Path) -> PidRecord | None:
        """Read a record; None if missing or unreadable."""
        try:
            data = json.loads(path.read_text())
            return cls(int(data["pid"]), float(data["start_time"]), str(data["marker"]))
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def alive(self) -> bool:
        """True only if the same process still runs (same start time, marker in its cmdline)."""
        try:
            proc = psutil.Process(self.pid)
            if abs(proc.create_time() - self.start_time) > 0.5:
                return False
            if proc.status() == psutil.STATUS_ZOMBIE:
                return False
            return self.marker in " ".join(proc.cmdline()) + " "
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            return False


def live_record(path: Path) -> PidRecord | None:
    """The record at ``path`` if its process is still the one recorded, else None."""
    record = PidRecord.load(path)
    return record if record and record.alive() else None


def qemu_marker(inst: InstanceDir) -> str:
    """What a QEMU of this instance has in its command line (its dir, as in -initrd/-chardev)."""
    return f"{inst.root}/"


def agent_marker(inst: InstanceDir) -> str:
    """What this instance's agent has at the end of its command line."""
    return f"envdeck.backend.agent {inst.name} "
