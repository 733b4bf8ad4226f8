"""How long the agent waits for each boot stage before it speaks up or gives up."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field

# A working KVM guest reaches /init in about a second; a hung one may still print the boot
# stub's "Probing EDD" first, so the watchdog waits for the kernel-booted marker, not any output.
KVM_WATCHDOG_S = 10.0
STALL_AFTER_S = {
    "first serial output": 20.0,
    "kernel booted": 90.0,
    "ssh port open": 60.0,
    "ssh authenticated": 30.0,
    "provisioning done": 600.0,
}
BOOT_DEADLINE_S = 300.0


@dataclass(frozen=True)
class Timings:
    """The stall timers of one agent (``from_env`` applies ``ENVDECK_STALL_SCALE``)."""

    stall_after_s: Mapping[str, float] = field(default_factory=lambda: dict(STALL_AFTER_S))
    boot_deadline_s: float = BOOT_DEADLINE_S
    kvm_watchdog_s: float = KVM_WATCHDOG_S

    @classmethod
    def scaled(cls, scale: float) -> Timings:
        """The stall timers times ``scale`` (the KVM watchdog is not scaled)."""
        return cls(
            stall_after_s={stage: s * scale for stage, s in STALL_AFTER_S.items()},
            boot_deadline_s=BOOT_DEADLINE_S * scale,
        )

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> Timings:
        """Tests (and impatient users) can scale the stall timers: ENVDECK_STALL_SCALE=0.2."""
        return cls.scaled(float(environ.get("ENVDECK_STALL_SCALE", "1") or 1))
