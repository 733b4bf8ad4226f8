"""Small text formatters shared by the panes."""

from __future__ import annotations

import platform

from rich.text import Text

from envdeck.backend import units
from envdeck.backend.arch import qemu_arch
from envdeck.backend.text import visible, visible_lines

HOST_ARCH = platform.machine()

STATE_VARIABLE = {
    "ready": "state-ready",
    "running": "state-ready",
    "active": "state-ready",
    "starting": "state-booting",
    "booting": "state-booting",
    "stopping": "state-booting",
    "restarting": "state-booting",
    "stopping…": "state-booting",
    "restarting…": "state-booting",
    "paused": "state-degraded",
    "degraded": "state-degraded",
    "conflict": "state-degraded",
    "crashed": "state-crashed",
    "failed": "state-crashed",
    "dead": "state-crashed",
}


def human_bytes(n: int | float | None) -> str:
    """1536 -> '1.5K' (compact, for columns); None -> '-'."""
    return units.human_bytes(n, compact=True)


duration = units.human_duration


plural = units.plural


def same_arch(a: str | None, b: str | None = HOST_ARCH) -> bool:
    """True when two arch names (docker or kernel spelling) are the same machine."""
    if not a or not b:
        return True
    a = a.split("/")[-1]
    return qemu_arch(a) == qemu_arch(b)


def plain(text: object, style: str = "") -> Text:
    """Text from a guest, a process, a container or a recording, ready to render: its control
    characters made visible (:func:`~envdeck.backend.text.visible`), never parsed as markup."""
    return Text(visible(text), style=style)


def plain_lines(text: str, style: str = "") -> Text:
    """Multi-line untrusted text (a config file, a log, command lines): each line made visible."""
    return Text("\n".join(visible_lines(text)), style=style)


def state_text(state: str, colours: dict[str, str]) -> Text:
    """``state`` coloured by the theme (``colours`` holds the app's CSS variables)."""
    variable = STATE_VARIABLE.get(state, "state-stopped")
    return plain(state, colours.get(variable, ""))
