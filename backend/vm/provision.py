"""Provisioning: the instance's ``provision:`` scripts, run in the guest over SSH after boot.

"Once" is kept by a marker in the guest (``/var/lib/envdeck/provisioned-<hash>``): a guest with
a persistent disk provisions once, and the tiny guest, whose root lives in RAM, provisions again
on every boot (its earlier work is gone with the RAM). Output streams line by line to ``emit``.
"""

from __future__ import annotations

import hashlib
import shlex
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from envdeck.backend.config import ProvisionStep

MARKER_DIR = "/var/lib/envdeck"


@dataclass(frozen=True)
class ProvisionResult:
    """How provisioning went: ``failed_step`` is None on success."""

    ran: bool
    failed_step: int | None = None
    exit_status: int | None = None
    output_tail: str = ""


def steps_digest(steps: tuple[ProvisionStep, ...]) -> str:
    """A short hash of the scripts and their modes (a change re-provisions)."""
    digest = hashlib.sha256()
    for step in steps:
        digest.update(f"{step.mode}\0{step.script}\0".encode())
    return digest.hexdigest()[:16]


def wrap(step: ProvisionStep) -> str:
    """The shell command that runs one step (user mode: as the login user — root on tiny)."""
    return f"sh -e -c {shlex.quote(step.script)} 2>&1"


async def run_provisioning(
    conn: Any, steps: tuple[ProvisionStep, ...], emit_line: Callable[[str], None]
) -> ProvisionResult:
    """Run every step unless this guest already has the marker; stop at the first failure."""
    if not steps:
        return ProvisionResult(ran=False)
    marker = f"{MARKER_DIR}/provisioned-{steps_digest(steps)}"
    check = await conn.run(f"test -e {marker}", check=False)
    if check.exit_status == 0:
        return ProvisionResult(ran=False)
    for index, step in enumerate(steps, 1):
        emit_line(f"[provision {index}/{len(steps)} {step.mode}] starting")
        tail: list[str] = []
        async with conn.create_process(wrap(step)) as process:
            async for line in process.stdout:
                text = line.rstrip("\n")
                tail = (tail + [text])[-10:]
                emit_line(f"[provision {index}] {text}")
            await process.wait()
            status = process.exit_status
        if status != 0:
            emit_line(f"[provision {index}] failed with exit status {status}")
            return ProvisionResult(True, index, status, "\n".join(tail))
        emit_line(f"[provision {index}] done")
    await conn.run(f"mkdir -p {MARKER_DIR} && touch {marker}", check=False)
    return ProvisionResult(ran=True)
