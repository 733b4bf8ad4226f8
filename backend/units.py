"""Human-readable sizes and durations, shared by the CLI and the dashboard (pure)."""

from __future__ import annotations


def human_bytes(n: int | float | None, *, compact: bool = False) -> str:
    """1536 -> '1.5KiB' (or '1.5K' with ``compact``, for table columns); None -> '-'."""
    if n is None:
        return "-"
    units = ("B", "K", "M", "G", "T") if compact else ("B", "KiB", "MiB", "GiB", "TiB")
    decimals_below = 10 if compact else 100
    value = float(n)
    for unit in units:
        if abs(value) < 1024 or unit == units[-1]:
            if unit == "B":
                return f"{value:.0f}B"
            return f"{value:.1f}{unit}" if value < decimals_below else f"{value:.0f}{unit}"
        value /= 1024
    raise AssertionError("unreachable")


def human_duration(seconds: float | None) -> str:
    """Compact age: 42s, 3m12s, 5h03m, 2d04h; None or negative -> '-'."""
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


def plural(count: int, noun: str, nouns: str | None = None) -> str:
    """``1 instance``, ``2 instances`` (``nouns`` when the plural is not noun + s)."""
    return f"{count} {noun if count == 1 else (nouns or noun + 's')}"
