"""The ``envdeck`` command: one argparse tree, one module per command group.

Every module in this package that defines ``register(subparsers)`` adds its commands; each
command sets ``func(args) -> int`` as its handler. With no command, the dashboard opens.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys

from envdeck.backend.cli import output
from envdeck.backend.errors import EnvdeckError


def build_parser() -> argparse.ArgumentParser:
    """The full parser, with every command module's commands registered."""
    parser = argparse.ArgumentParser(
        prog="envdeck",
        description="Terminal dashboard and CLI for local VMs, containers, forwards and processes.",
    )
    parser.add_argument("--theme", help="dashboard theme (see themes/)")
    parser.add_argument("--readonly", action="store_true", help="dashboard without actions")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    package = importlib.import_module(__package__)
    for info in sorted(pkgutil.iter_modules(package.__path__), key=lambda m: m.name):
        if info.name in ("main", "output"):
            continue
        module = importlib.import_module(f"{__package__}.{info.name}")
        register = getattr(module, "register", None)
        if register is not None:
            register(sub)
    return parser


def open_dashboard(args: argparse.Namespace) -> int:
    """Open the Textual dashboard (imported lazily: the backend never imports Textual)."""
    try:
        tui = importlib.import_module("envdeck.tui.app")
    except ModuleNotFoundError as exc:
        raise EnvdeckError(
            "the dashboard is not available in this build",
            hint="use the CLI commands ('envdeck --help')",
        ) from exc
    return int(tui.run_dashboard(theme=args.theme, readonly=args.readonly) or 0)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``envdeck`` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        func = getattr(args, "func", None)
        if func is None:
            return open_dashboard(args)
        return int(func(args) or 0)
    except EnvdeckError as exc:
        output.error(exc)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
