"""Shared CLI output: rich console, JSON printing, error display, small formatters."""

from __future__ import annotations

import json
import sys
from typing import Any

from rich.console import Console

from envdeck.backend.errors import EnvdeckError
from envdeck.backend.units import human_bytes, human_duration

__all__ = ["console", "err_console", "error", "human_bytes", "human_duration", "print_json"]

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
