"""The agent's entry point, kept light: it takes the instance's agent lock and launches QEMU from
the last start's plan (:mod:`plan`) before it imports the agent itself (:mod:`daemon`)."""

from __future__ import annotations

import sys

from envdeck.backend.agent import plan
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
            early = plan.launch_from_plan(inst)
            try:
                from envdeck.backend.agent import daemon

                return daemon.serve(inst, early)
            finally:
                if early is not None:
                    early.abandon()  # (nothing when the machine adopted it)
    except BlockingIOError:
        print(f"another agent already owns {inst.name}", file=sys.stderr)
        return 0
