"""What the agent does for each command of :mod:`agent.protocol` (its command table)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from envdeck.backend.agent import protocol as p
from envdeck.backend.agent.console import SerialConsole
from envdeck.backend.agent.machine import Machine
from envdeck.backend.agent.server import CommandTable, Followed, Session
from envdeck.backend.agent.state import AgentState
from envdeck.backend.agent.tasks import Later
from envdeck.backend.events import Event, SerialOutput
from envdeck.backend.store import InstanceDir

if TYPE_CHECKING:  # (built once QEMU runs: see guestside)
    from envdeck.backend.agent.guestside import GuestSide
    from envdeck.backend.forwards.manager import ForwardManager

RECENT_MESSAGES = 20  # the messages a new subscriber is shown


class Commands:
    """The handlers, over the agent's parts."""

    def __init__(
        self,
        inst: InstanceDir,
        state: AgentState,
        console: SerialConsole,
        machine: Machine,
        guest: Later[GuestSide],
    ) -> None:
        self.inst = inst
        self.state = state
        self.console = console
        self.machine = machine
        self.guest = guest

    def table(self) -> CommandTable:
        """Every command of the protocol, with its handler."""
        return {
            p.Status: self.status,
            p.Subscribe: self.subscribe,
            p.FollowSerial: self.follow_serial,
            p.Stop: self.stop,
            p.Pause: self.pause,
            p.Resume: self.resume,
            p.Suspend: self.suspend,
            p.Forwards: self.list_forwards,
            p.ForwardAdd: self.forward_add,
            p.ForwardRemove: self.forward_remove,
            p.Stages: self.stages,
        }

    async def status(self, _session: Session, _request: p.Status) -> dict[str, Any]:
        return self.state.status.to_dict()

    async def subscribe(self, session: Session, request: p.Subscribe) -> Followed:
        """The status; then (as events) the status, recent messages, the stages, the forwards
        and the serial backlog; from then on every event."""
        state = self.state
        backlog: list[Event] = [
            state.status,
            *list(state.messages)[-RECENT_MESSAGES:],
            *state.tracker.history,
            *(self.guest.now.forwards.events() if self.guest.now else []),
        ]
        lines = self.console.tail.last(request.backlog) if request.backlog else []
        if lines:
            backlog.append(SerialOutput(instance=self.inst.name, lines=lines))
        session.subscribed = True
        return Followed(state.status.to_dict(), backlog)

    async def follow_serial(self, session: Session, _request: p.FollowSerial) -> dict[str, Any]:
        self.console.flush()
        session.subscribed, session.serial_only = True, True
        return {"offset": self.console.log.size, "path": str(self.inst.serial_log)}

    async def stop(self, _session: Session, request: p.Stop) -> dict[str, str]:
        return await self.machine.stop(request.timeout)

    async def pause(self, _session: Session, _request: p.Pause) -> dict[str, str]:
        return await self.machine.pause()

    async def resume(self, _session: Session, _request: p.Resume) -> dict[str, str]:
        return await self.machine.resume()

    async def suspend(self, _session: Session, _request: p.Suspend) -> dict[str, str]:
        return await self.machine.suspend()

    async def list_forwards(self, _session: Session, _request: p.Forwards) -> list[Any]:
        return (await self.guest.get()).forwards.snapshot()

    async def forward_add(self, _session: Session, request: p.ForwardAdd) -> dict[str, Any]:
        forwards = (await self.guest.get()).forwards
        result = await forwards.add(request.spec)
        self._save_forwards(forwards)
        return result

    async def forward_remove(self, _session: Session, request: p.ForwardRemove) -> dict[str, Any]:
        forwards = (await self.guest.get()).forwards
        forwards.remove(request.guest)
        self._save_forwards(forwards)
        return {"removed": request.guest}

    async def stages(self, _session: Session, _request: p.Stages) -> list[dict[str, Any]]:
        return [stage.to_dict() for stage in self.state.tracker.history]

    def _save_forwards(self, forwards: ForwardManager) -> None:
        """Runtime adds and removals are kept in state.json: the next start applies them."""
        if not self.inst.update_state_if_room(**forwards.saved()):
            self.state.say("warning", "disk full: the forward change works but is not saved")
