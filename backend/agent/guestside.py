"""The agent's guest side: the forwards and the walk from a booting guest to ready.

Both need asyncssh and the forward manager, whose imports take longer than launching QEMU. The
agent therefore launches QEMU first and imports this module in a thread while the guest boots
(:meth:`daemon.Agent.guest_side`); nothing on the way to QEMU's launch imports it.
"""

from __future__ import annotations

from dataclasses import dataclass

from envdeck.backend.agent.console import SerialConsole
from envdeck.backend.agent.readiness import Readiness
from envdeck.backend.agent.state import AgentState
from envdeck.backend.agent.tasks import TaskSet
from envdeck.backend.agent.timings import Timings
from envdeck.backend.config import InstanceConfig
from envdeck.backend.forwards.manager import ForwardManager
from envdeck.backend.ssh.link import GuestLink
from envdeck.backend.store import InstanceDir


@dataclass(frozen=True)
class GuestSide:
    """The forwards of one instance and its readiness walk, over the agent's SSH link."""

    forwards: ForwardManager
    readiness: Readiness

    @classmethod
    def build(
        cls,
        inst: InstanceDir,
        cfg: InstanceConfig,
        state: AgentState,
        console: SerialConsole,
        link: GuestLink,
        timings: Timings,
        tasks: TaskSet,
    ) -> GuestSide:
        """Wire the forwards and the readiness walk to the agent's parts."""
        forwards = ForwardManager(
            inst.name,
            cfg.port_forwards,
            state.emit,
            lambda: link.conn,
            base_dir=inst.root,
            mux=link.master_path,
        )
        readiness = Readiness(inst, cfg, state, console, link, forwards, timings, tasks)
        return cls(forwards, readiness)
