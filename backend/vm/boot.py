"""Named, timed boot stages (Lima-style) and what to tell the user when one stalls."""

from __future__ import annotations

import time
from collections.abc import Callable

from envdeck.backend.events import BootStage

STAGES = (
    "qemu started",
    "first serial output",
    "kernel booted",
    "ssh port open",
    "ssh authenticated",
    "provisioning done",
    "ready",
)

#: serial markers printed by the tiny guest's /init
STAGE_MARKERS = {
    "envdeck-stage: init": "kernel booted",
    "Run /init as init process": "kernel booted",  # any kernel that logs to the console
}

PANIC_WORDS = ("Kernel panic", "kernel BUG", "Oops:", "not syncing")


class BootTracker:
    """Emit BootStage events as stages complete; diagnose stalls from the serial tail."""

    def __init__(self, instance: str, emit: Callable[[BootStage], None]) -> None:
        self.instance = instance
        self._emit = emit
        self.t0 = time.monotonic()
        self.done: dict[str, float] = {}
        self.history: list[BootStage] = []
        self.stages = list(STAGES)
        self.current: str | None = STAGES[0]

    def add_stage(self, stage: str, before: str = "ready") -> None:
        """A stage this guest has besides the common ones (the docker template's 'docker
        ready'); added before it is reached."""
        if stage not in self.stages:
            self.stages.insert(self.stages.index(before), stage)

    def elapsed(self) -> float:
        """Seconds since the boot started."""
        return time.monotonic() - self.t0

    def _send(self, stage: str, status: str, detail: str | None = None) -> None:
        event = BootStage(
            instance=self.instance,
            stage=stage,
            status=status,
            elapsed_s=round(self.elapsed(), 2),
            detail=detail,
        )
        self.history.append(event)
        self._emit(event)

    def reached(self, stage: str, detail: str | None = None) -> None:
        """Mark ``stage`` done (and any earlier stage not yet marked); start the next one."""
        index = self.stages.index(stage)
        for earlier in self.stages[: index + 1]:
            if earlier not in self.done:
                self.done[earlier] = self.elapsed()
                self._send(earlier, "done", detail if earlier == stage else None)
        following = self.stages[index + 1] if index + 1 < len(self.stages) else None
        if following and following not in self.done and self.current != following:
            self.current = following
            self._send(following, "running")
        elif following is None:
            self.current = None

    def stalled(self, hint: str) -> None:
        """The current stage takes too long: say which, and why we think so."""
        if self.current:
            self._send(self.current, "stalled", hint)

    def failed(self, hint: str) -> None:
        """The current stage cannot complete."""
        if self.current:
            self._send(self.current, "failed", hint)

    def see_serial(self, lines: list[str]) -> None:
        """Advance stages from serial output."""
        if lines and "first serial output" not in self.done:
            self.reached("first serial output")
        for line in lines:
            for marker, stage in STAGE_MARKERS.items():
                if marker in line and stage not in self.done:
                    self.reached(stage)


def panic_line(serial_tail: list[str]) -> str | None:
    """The last kernel panic/oops line in the serial tail, stripped, or None."""
    found = next(
        (line for line in reversed(serial_tail) if any(w in line for w in PANIC_WORDS)), None
    )
    return found.strip() if found else None


def diagnose(stage: str | None, waited: float, serial_tail: list[str], ssh_port: int | None) -> str:
    """A one-paragraph reason for a stall at ``stage`` from what the serial log shows."""
    panic = panic_line(serial_tail)
    if panic:
        return f"kernel panic on the serial console: {panic}"
    last = " | ".join(line.strip() for line in serial_tail[-3:]) or "(nothing)"
    if not serial_tail:
        return (
            f"no serial output after {waited:.0f}s: the kernel has not started "
            "(a hung accelerator, a wrong kernel, or too little memory)"
        )
    if stage in ("ssh port open", "ssh authenticated"):
        return (
            f"the guest booted but SSH on 127.0.0.1:{ssh_port} gives no answer after "
            f"{waited:.0f}s: sshd is not running in the guest; last serial lines: {last}"
        )
    return f"stuck at '{stage}' after {waited:.0f}s; last serial lines: {last}"
