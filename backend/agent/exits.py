"""Why QEMU exited, in words: the final state and reason the agent records."""

from __future__ import annotations

import signal
from pathlib import Path

from envdeck.backend.vm.boot import panic_line

CLEAN_EXIT = "exited with status 0"


def describe_exit(code: int) -> str:
    """A child's exit status in words (``CLEAN_EXIT`` for 0)."""
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        return f"was killed by signal {-code} ({name})"
    return f"exited with status {code}"


def last_lines(path: Path, n: int) -> str:
    """The last ``n`` meaningful lines of a log, joined with ' | ' ('' if unreadable)."""
    try:
        lines = [
            line.strip()
            for line in path.read_text(errors="replace").splitlines()
            if line.strip() and "waiting for connection" not in line
        ]
    except OSError:
        return ""
    return " | ".join(lines[-n:])


def verdict(
    how: str, stopping: bool, serial_tail: list[str], qemu_log: Path
) -> tuple[str, str | None]:
    """(state, reason) after QEMU ``how`` (see :func:`describe_exit`); ``serial_tail``: the last
    30 non-empty serial lines, oldest first."""
    panic = panic_line(serial_tail)
    if stopping:
        return "stopped", None
    if how == CLEAN_EXIT and panic:
        return "crashed", f"the guest kernel panicked: {panic}"
    if how == CLEAN_EXIT and any("Restarting system" in x for x in serial_tail[-5:]):
        return "stopped", "the guest rebooted itself (QEMU runs with -no-reboot): start it again"
    if how == CLEAN_EXIT:
        return "stopped", "the guest powered itself off"
    last = " | ".join(serial_tail[-5:]) or "(no serial output)"
    reason = f"QEMU {how}; last serial lines: {last}"
    qemu_err = last_lines(qemu_log, 3)
    if qemu_err:
        reason += f"; QEMU said: {qemu_err}"
    return "crashed", reason
