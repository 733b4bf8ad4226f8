"""The header's host summary: cheap reads only (/proc/loadavg, /proc/meminfo), no psutil scan."""

from __future__ import annotations

import contextlib
import os
import platform
import socket

from .formatting import human_bytes


def _meminfo() -> tuple[int, int] | None:
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            values = {}
            for line in fh:
                key, _, rest = line.partition(":")
                if key in ("MemTotal", "MemAvailable"):
                    values[key] = int(rest.split()[0]) * 1024
                if len(values) == 2:
                    break
        return values["MemTotal"], values["MemAvailable"]
    except (OSError, KeyError, ValueError):
        return None


def host_summary() -> str:
    """``myhost x86_64 · 2 cpus · load 0.41 · mem 3.1G/7.8G``."""
    parts = [f"{socket.gethostname()} {platform.machine()}", f"{os.cpu_count() or '?'} cpus"]
    with contextlib.suppress(OSError):
        parts.append(f"load {os.getloadavg()[0]:.2f}")
    mem = _meminfo()
    if mem:
        total, available = mem
        parts.append(f"mem {human_bytes(total - available)}/{human_bytes(total)}")
    return " · ".join(parts)
