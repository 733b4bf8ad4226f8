"""Small text formatters shared by the panes."""

from __future__ import annotations

import platform

from rich.text import Text

HOST_ARCH = platform.machine()
_ARCH_ALIASES = {"amd64": "x86_64", "arm64": "aarch64", "x86_64": "x86_64", "aarch64": "aarch64"}

STATE_VARIABLE = {
    "ready": "state-ready",
    "running": "state-ready",
    "active": "state-ready",
    "starting": "state-booting",
    "booting": "state-booting",
    "stopping": "state-booting",
    "restarting": "state-booting",
    "paused": "state-degraded",
    "degraded": "state-degraded",
    "conflict": "state-degraded",
    "crashed": "state-crashed",
    "failed": "state-crashed",
    "dead": "state-crashed",
}


def human_bytes(n: int | float | None) -> str:
    """1536 -> '1.5K' (compact, for columns); None -> '-'."""
    if n is None:
        return "-"
    value = float(n)
    for unit in ("B", "K", "M", "G", "T"):
        if abs(value) < 1024 or unit == "T":
            if unit == "B":
                return f"{value:.0f}B"
            return f"{value:.1f}{unit}" if value < 10 else f"{value:.0f}{unit}"
        value /= 1024
    return f"{value:.0f}T"


def duration(seconds: float | None) -> str:
    """Compact age: 42s, 3m12s, 5h03m, 2d04h; None -> '-'."""
    if seconds is None or seconds < 0:
        return "-"
    s = int(seconds)
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    if s < 86400:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    return f"{s // 86400}d{s % 86400 // 3600:02d}h"


def same_arch(a: str | None, b: str | None = HOST_ARCH) -> bool:
    """True when two arch names (docker or kernel spelling) are the same machine."""
    if not a or not b:
        return True
    a = a.split("/")[-1]
    return _ARCH_ALIASES.get(a, a) == _ARCH_ALIASES.get(b, b)


def state_text(state: str, colours: dict[str, str]) -> Text:
    """``state`` coloured by the theme (``colours`` holds the app's CSS variables)."""
    variable = STATE_VARIABLE.get(state, "state-stopped")
    return Text(state, style=colours.get(variable, ""))
