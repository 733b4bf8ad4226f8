"""Spawning an instance's agent: the first thing ``envdeck start`` does.

This module stays light (the store, the pid-record check and ``subprocess``; no asyncio, no rich,
no config schema) so the CLI can hand the boot to the agent before it imports what it needs to
follow it: every millisecond before the agent's exec is a millisecond before QEMU's.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass

from envdeck.backend.instances.status import agent_running
from envdeck.backend.store import InstanceDir

#: how long a start waits for an agent whose QEMU has ended to finish exiting
DYING_AGENT_WAIT_S = 10.0


@dataclass(frozen=True)
class Launched:
    """An instance whose agent runs: ``proc`` is the one we spawned (None: it ran already)."""

    inst: InstanceDir
    proc: subprocess.Popen[bytes] | None


def spawn_agent(inst: InstanceDir) -> subprocess.Popen[bytes]:
    """Start the instance's agent detached from this process (it outlives the CLI and TUI).

    Its output goes to agent.log (owner only; the agent rotates it once its logging is set up)."""
    fd = os.open(inst.agent_log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    os.fchmod(fd, 0o600)  # (an agent.log made by an older envdeck)
    log_file = os.fdopen(fd, "ab")
    try:
        return subprocess.Popen(
            [sys.executable, "-m", "envdeck.backend.agent", inst.name],
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            close_fds=True,
            env=os.environ.copy(),
        )
    finally:
        log_file.close()


def agent_dying(inst: InstanceDir) -> bool:
    """An agent runs but its QEMU has ended (crashed or stopped): it is on its way out."""
    return agent_running(inst) and inst.read_state().get("state") in ("crashed", "stopped")


def launch_now(name: str) -> Launched:
    """Spawn the instance's agent unless one runs; an agent on its way out (its QEMU has ended)
    is waited out first. Blocking: the TUI calls it in a thread."""
    inst = InstanceDir.existing(name)
    deadline = time.monotonic() + DYING_AGENT_WAIT_S
    while agent_dying(inst) and time.monotonic() < deadline:
        time.sleep(0.05)
    return Launched(inst, None if agent_running(inst) else spawn_agent(inst))
