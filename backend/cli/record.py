"""``envdeck record FILE`` and ``envdeck replay FILE``: the event stream to disk and back."""

from __future__ import annotations

import argparse
import importlib
from pathlib import Path

from envdeck.backend.cli import output
from envdeck.backend.errors import EnvdeckError, UserInputError


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``record`` and ``replay`` commands."""
    rec = sub.add_parser("record", help="write the live event stream to a JSON Lines file")
    rec.add_argument("file", type=Path)
    rec.add_argument("--seconds", type=float, default=30.0, help="how long to record (default 30)")
    rec.set_defaults(func=cmd_record)

    rep = sub.add_parser(
        "replay", help="play a recording in the dashboard (read-only: it never acts or connects)"
    )
    rep.add_argument("file", type=Path)
    rep.add_argument("--speed", type=float, default=1.0, help="2 = twice as fast, 0 = at once")
    # Also accepted after the command; SUPPRESS keeps the top-level value when absent here.
    rep.add_argument("--theme", default=argparse.SUPPRESS, help="dashboard theme")
    rep.add_argument(
        "--readonly", action="store_true", default=argparse.SUPPRESS, help="(always, in a replay)"
    )
    rep.set_defaults(func=cmd_replay)


def cmd_record(args: argparse.Namespace) -> int:
    """Record the live sources for ``--seconds``."""
    import asyncio

    from envdeck.backend.live import live_sources
    from envdeck.backend.recording import record

    if args.seconds <= 0:
        raise UserInputError("--seconds must be positive")
    live = live_sources()
    for notice in live.notices:
        output.err_console.print(output.line(("note:", "yellow"), " ", notice))
    sources = live.sources
    if not sources:
        raise EnvdeckError("no live sources are available to record")
    output.err_console.print(
        output.line(
            f"recording {', '.join(s.name for s in sources)} for {args.seconds:g}s to {args.file}"
        )
    )
    count = asyncio.run(record(sources, args.file, args.seconds))
    output.console.print(output.line(f"{count} events written to {args.file}"))
    return 0


def cmd_replay(args: argparse.Namespace) -> int:
    """Open the dashboard driven by a recording: always read-only, and its backend refuses
    every command (the dashboard gives a replay ReplayBackend); bad lines are counted."""
    from envdeck.backend.recording import ReplaySource

    source = ReplaySource(args.file, speed=args.speed)
    try:
        tui = importlib.import_module("envdeck.tui.app")  # lazily: backend never imports Textual
    except ModuleNotFoundError as exc:
        raise EnvdeckError("the dashboard is not available in this build") from exc
    code = int(tui.run_dashboard(theme=args.theme, readonly=True, sources=[source]) or 0)
    if source.skipped:
        output.err_console.print(output.line(("warning:", "yellow"), " ", source.reader.summary()))
    return code
