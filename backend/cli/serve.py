"""``envdeck serve``: the dashboard in a browser (textual-serve), one dashboard per tab, behind
a token printed with the URL. Binds 127.0.0.1 unless told otherwise with ``--allow-remote``."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    """Add the serve command."""
    p = sub.add_parser(
        "serve",
        help="serve the dashboard to a browser (127.0.0.1, a token in the printed URL)",
        description="Serve the dashboard to a browser: each tab runs its own dashboard. "
        "Open the printed URL (it holds a token made for this launch); Ctrl-C stops it.",
    )
    p.add_argument("--port", type=port_number, default=8000, help="TCP port (default 8000)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument(
        "--allow-remote",
        action="store_true",
        help="allow a --host other machines can reach (plain HTTP: use with care)",
    )
    p.set_defaults(func=cmd_serve)


def port_number(text: str) -> int:
    """A TCP port 1-65535 (argparse type)."""
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise argparse.ArgumentTypeError(f"{text!r} is not a TCP port (1-65535)")
    return int(text)


def cmd_serve(args: argparse.Namespace) -> int:
    from envdeck.backend.cli.main import dashboard_module

    web = dashboard_module("web")
    return int(
        web.serve(
            args.host,
            args.port,
            allow_remote=args.allow_remote,
            theme=args.theme,
            readonly=args.readonly,
        )
    )
