"""QEMU from the last start's launch plan, before the agent imports the rest of itself.

Between its exec and QEMU's, the agent spends ~0.2 s on imports, the instance's config and its
boot files, while a tiny guest boots in ~2.5 s under TCG. So the agent of a tiny instance keeps
the argv it launched (``launch-plan.json``: the argv, the SSH port, the kernel's and the
initramfs' size, mtime and inode). The next agent launches that argv at once and connects to the
serial console (the guest runs from then on); then it builds the argv the usual way. The same
argv and unchanged boot files: it adopts that QEMU. Anything else (the config or envdeck
changed): it kills it, a fraction of a second into its boot, and launches the right one.

No plan is used while a saved (suspended) guest waits to be resumed, nor while a QEMU of the
instance runs, nor one whose argv is not about this instance's directory (copied from another).
This module stays light: no asyncio, no yaml, no config.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from envdeck.backend.pidrecord import PidRecord, qemu_marker
from envdeck.backend.store import InstanceDir, write_atomic

PLAN_FILE = "launch-plan.json"
#: how long the early launch waits for QEMU's serial socket (QEMU makes it within ~0.1 s)
SERIAL_WAIT_S = 3.0

Signature = dict[str, list[int]]


def signature(paths: list[Path]) -> Signature:
    """Size, mtime and inode of each file (a missing one: empty)."""
    stamps: Signature = {}
    for path in paths:
        try:
            info = path.stat()
            stamps[str(path)] = [info.st_size, info.st_mtime_ns, info.st_ino]
        except OSError:
            stamps[str(path)] = []
    return stamps


@dataclass(frozen=True)
class LaunchPlan:
    """What the last start launched."""

    argv: list[str]
    port: int
    boot_files: Signature

    @classmethod
    def read(cls, root: Path) -> LaunchPlan | None:
        """The plan in the instance dir ``root``; None when missing, not one, or not ours
        alone (a command line run on the host: as ssh with its config, others must not write it)."""
        path = root / PLAN_FILE
        try:
            info = path.stat()
            if info.st_uid != os.getuid() or info.st_mode & 0o022:
                return None
            data = json.loads(path.read_text())
            argv, port, files = data["argv"], data["port"], data["boot_files"]
        except (OSError, ValueError, KeyError, TypeError):
            return None
        if not (
            isinstance(argv, list)
            and argv
            and all(isinstance(a, str) for a in argv)
            and isinstance(port, int)
            and isinstance(files, dict)
            and files
        ):
            return None
        return cls(argv, port, {str(k): list(v) for k, v in files.items()})

    def write(self, root: Path) -> None:
        """Keep it for the next start (owner-only, atomically)."""
        data = {"argv": self.argv, "port": self.port, "boot_files": self.boot_files}
        write_atomic(root / PLAN_FILE, json.dumps(data))


def discard(root: Path) -> None:
    """No plan for the next start."""
    with contextlib.suppress(FileNotFoundError):
        (root / PLAN_FILE).unlink()


@dataclass
class EarlyLaunch:
    """A QEMU launched from the plan, not yet adopted by the agent's machine."""

    inst: InstanceDir
    plan: LaunchPlan
    proc: subprocess.Popen[bytes]
    serial: socket.socket | None
    launched_at: float  # (wall clock)
    settled: bool = field(default=False)  # adopted by the machine, or abandoned

    def matches(self, argv: list[str], boot_files: Signature) -> bool:
        """This QEMU is the one the agent would launch now (and it still runs)."""
        return (
            self.proc.poll() is None
            and self.serial is not None
            and argv == self.plan.argv
            and boot_files == self.plan.boot_files
        )

    def adopt(self) -> tuple[subprocess.Popen[bytes], socket.socket | None]:
        """The machine takes it over: its process and its serial connection."""
        self.settled = True
        return self.proc, self.serial

    def abandon(self) -> None:
        """Kill it (not the right QEMU, or the agent could not go on); forget its pid. Nothing
        once it is adopted."""
        if self.settled:
            return
        self.settled = True
        if self.serial is not None:
            self.serial.close()
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        with contextlib.suppress(FileNotFoundError):
            self.inst.qemu_pid.unlink()


def launch_from_plan(inst: InstanceDir) -> EarlyLaunch | None:
    """Launch the last start's QEMU argv if the plan holds (call it with the agent lock held)."""
    from envdeck.backend.instances.status import qemu_running
    from envdeck.backend.vm import saved as saved_machine

    plan = LaunchPlan.read(inst.root)
    if plan is None or saved_machine.exists(inst.root) or qemu_running(inst):
        return None
    if qemu_marker(inst) not in " ".join(plan.argv):  # (a copied or moved instance dir)
        return None
    if signature([Path(p) for p in plan.boot_files]) != plan.boot_files:
        return None  # rebuilt since: the usual launch
    launched_at = time.time()
    try:
        proc = spawn_qemu(inst, plan.argv)
    except OSError:
        return None
    early = EarlyLaunch(inst, plan, proc, _connect_serial(inst.serial_sock, proc), launched_at)
    _record_pid(inst, proc.pid)
    return early


def spawn_qemu(inst: InstanceDir, argv: list[str]) -> subprocess.Popen[bytes]:
    """Launch the instance's QEMU (this early one, and the machine's usual one): the last one's
    sockets removed, its output to qemu.log, in a session of its own (QEMU outlives a killed
    agent; the next agent adopts it)."""
    for stale in (inst.serial_sock, inst.qmp_sock):
        with contextlib.suppress(FileNotFoundError):
            stale.unlink()
    with open(inst.root / "qemu.log", "wb") as qemu_log:
        return subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=qemu_log,
            stderr=qemu_log,
            start_new_session=True,
        )


def _connect_serial(path: Path, proc: subprocess.Popen[bytes]) -> socket.socket | None:
    """Connect to QEMU's serial socket as soon as it is there (QEMU waits for it, then runs the
    guest); None when QEMU exits first or it does not appear in time."""
    deadline = time.monotonic() + SERIAL_WAIT_S
    while proc.poll() is None and time.monotonic() < deadline:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.connect(str(path))
            return sock
        except OSError:
            sock.close()
            time.sleep(0.005)
    return None


def _record_pid(inst: InstanceDir, pid: int) -> None:
    """qemu.pid at once: a QEMU whose agent dies before it adopts it is still found."""
    with contextlib.suppress(Exception):
        PidRecord.of(pid, qemu_marker(inst)).save(inst.qemu_pid)
