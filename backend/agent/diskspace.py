"""A full disk is a state, not a silent failure: the instance turns ``degraded`` with the
reason "disk full", clients keep getting every event (only the files miss lines), and the
instance recovers on its own once space returns."""

from __future__ import annotations

import asyncio
import shutil
from functools import partial
from pathlib import Path

from envdeck.backend.agent.state import AgentState
from envdeck.backend.units import human_bytes
from envdeck.backend.vm.serial import RotatingLog

#: Free space that counts as "back" (a retry then writes a note into each full log).
ROOM_BYTES = 1 << 20
REASON = "disk full"


class DiskWatch:
    """Watches the agent's logs for a full disk; degrades and recovers the instance."""

    def __init__(self, state: AgentState, root: Path, logs: list[RotatingLog]) -> None:
        self.state = state
        self.root = root
        self.logs = logs
        for log in logs:
            log.on_full = partial(self._changed, log)

    @property
    def full(self) -> bool:
        """True while any of the logs could not be written."""
        return any(log.full for log in self.logs)

    def _changed(self, log: RotatingLog, full: bool) -> None:
        status = self.state.status
        if full and status.state == "ready":
            free = human_bytes(shutil.disk_usage(self.root).free)
            self.state.set_status(
                state="degraded",
                reason=f"{REASON}: cannot write {log.path.name} ({free} free in {self.root})",
            )
        elif (
            not self.full
            and status.state == "degraded"
            and (status.reason or "").startswith(REASON)
        ):
            self.state.set_status(state="ready", reason=None)

    async def run(self, every: float = 2.0) -> None:
        """While a log is full and space is back, retry it with a note of what was lost."""
        while True:
            await asyncio.sleep(every)
            if not self.full or shutil.disk_usage(self.root).free < ROOM_BYTES:
                continue
            for log in self.logs:
                if log.full:
                    dropped, log.dropped = log.dropped, 0
                    log.write_lines([f"[envdeck] {dropped} lines not written: the disk was full"])
