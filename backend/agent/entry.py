"""The agent's entry point, kept light: it takes the instance's agent lock and launches QEMU from
the last start's plan (:mod:`plan`) before it imports the agent itself (:mod:`daemon`)."""

from __future__ import annotations

import contextlib
import os
import sys

from envdeck.backend.agent import plan
from envdeck.backend.pidrecord import PidRecord, agent_marker
from envdeck.backend.store import InstanceDir, lock_file


def main(argv: list[str] | None = None) -> int:
    """Run the agent for one instance in the foreground (the CLI detaches it)."""
    args = argv if argv is not None else sys.argv[1:]
    if len(args) != 1:
        print("usage: python -m envdeck.backend.agent NAME", file=sys.stderr)
        return 2
    inst = InstanceDir.existing(args[0])
    try:
        with lock_file(inst.agent_lock):
            # agent.pid first: a second `envdeck start` whose agent finds the lock taken waits
            # for this one (api._connect_agent), rather than reporting its own agent's exit
            PidRecord.of(os.getpid(), agent_marker(inst)).save(inst.agent_pid)
            early = None
            try:
                early = plan.launch_from_plan(inst)
                from envdeck.backend.agent import daemon

                return daemon.serve(inst, early)
            finally:
                if early is not None:
                    early.abandon()  # (nothing when the machine adopted it)
                with contextlib.suppress(FileNotFoundError):
                    inst.agent_pid.unlink()
    except BlockingIOError:
        print(f"another agent already owns {inst.name}", file=sys.stderr)
        return 0
