"""Shared CLI output: rich console, JSON printing, error display, small formatters."""

from __future__ import annotations

import json
import sys
from typing import Any

from rich.console import Console

from ..errors import EnvdeckError

console = Console(highlight=False)
err_console = Console(stderr=True, highlight=False)


def print_json(data: Any) -> None:
    """Print ``data`` as indented JSON on stdout (machine-readable: no colour)."""
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")
    sys.stdout.flush()


def error(exc: EnvdeckError) -> None:
    """Print a user-facing error on stderr: what, where, and the hint."""
    where = f"{exc.where}: " if exc.where else ""
    err_console.print(f"[bold red]error:[/] {where}{exc.message}", markup=True, soft_wrap=True)
    if exc.hint:
        err_console.print(f"  [yellow]hint:[/] {exc.hint}", markup=True, soft_wrap=True)


def human_bytes(n: int | None) -> str:
    """1536 -> '1.5KiB'; None -> '-'."""
    if n is None:
        return "-"
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(value) < 1024 or unit == "TiB":
            return f"{value:.0f}{unit}" if unit == "B" or value >= 100 else f"{value:.1f}{unit}"
        value /= 1024
    return f"{value:.1f}TiB"


def human_duration(seconds: float | None) -> str:
    """3725 -> '1h02m'; None -> '-'."""
    if seconds is None:
        return "-"
    s = int(seconds)
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    if s < 86400:
        return f"{s // 3600}h{(s % 3600) // 60:02d}m"
    return f"{s // 86400}d{(s % 86400) // 3600:02d}h"
