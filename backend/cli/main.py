"""The ``envdeck`` command: one argparse tree, one module per command group.

Every module in this package that defines ``register(subparsers)`` adds its commands; each
command sets ``func(args) -> int`` as its handler. With no command, the dashboard opens.

Start-up is lazy. When the command line names a known command, only its module is imported
(:data:`COMMAND_MODULES`) and only that command gets its arguments; the module's other commands
are listed by name and help alone (:class:`Registrar`). ``envdeck --help``, no command or an
unknown one list every command that way. The command modules keep their heavy imports (rich,
asyncssh, docker, yaml, psutil) inside the functions that use them.
"""

from __future__ import annotations

import argparse
import gc
import importlib
import sys
from typing import Any

from envdeck.backend.errors import EnvdeckError

#: which module registers each command (aliases included); a test checks it against the modules
COMMAND_MODULES = {
    "binfmt": "binfmt",
    "containers": "containers",
    "container": "containers",
    "copy": "copy",
    "forwards": "forwards",
    "forward": "forwards",
    "create": "instances",
    "start": "instances",
    "stop": "instances",
    "pause": "instances",
    "resume": "instances",
    "restart": "instances",
    "suspend": "instances",
    "delete": "instances",
    "list": "instances",
    "ls": "instances",
    "logs": "instances",
    "shell": "instances",
    "exec": "instances",
    "up": "instances",
    "ps": "ps",
    "kill": "ps",
    "record": "record",
    "replay": "record",
    "serve": "serve",
    "validate": "validate",
}

#: top-level options that take a value (skipped when looking for the command word)
_VALUE_OPTIONS = ("--theme",)


def command_modules() -> list[str]:
    """Every command module of this package, in the order their commands are listed."""
    import pkgutil

    package = importlib.import_module(__package__)
    names = (info.name for info in pkgutil.iter_modules(package.__path__))
    return sorted(name for name in names if name not in ("main", "output"))


def command_word(argv: list[str]) -> str | None:
    """The command named on the command line (None before it, with --help, or with none)."""
    skip = False
    for arg in argv:
        if skip:
            skip = False
        elif arg in _VALUE_OPTIONS:
            skip = True
        elif arg == "--" or arg in ("-h", "--help"):
            return None
        elif not arg.startswith("-"):
            return arg
    return None


def opens_dashboard(argv: list[str]) -> bool:
    """No command and no help asked for: ``envdeck`` opens the dashboard."""
    return command_word(argv) is None and not {"-h", "--help", "--"} & set(argv)


class _Unused:
    """Stands in for the parser of a command that is not run: takes its arguments and drops
    them (so argparse never formats their choices)."""

    def __getattr__(self, name: str) -> Any:
        return lambda *args, **kwargs: self


class Registrar:
    """The subparsers as a command module sees them: every command is listed, but only the
    ``wanted`` one (all, when None) is built with its arguments."""

    def __init__(self, sub: argparse._SubParsersAction, wanted: str | None) -> None:
        self._sub = sub
        self._wanted = wanted

    def add_parser(self, name: str, **kwargs: Any) -> Any:
        parser = self._sub.add_parser(name, **kwargs)
        if self._wanted is None or self._wanted in (name, *kwargs.get("aliases", ())):
            return parser
        return _Unused()


def build_parser(argv: list[str] | None = None) -> argparse.ArgumentParser:
    """The parser for ``argv`` (lazy, as the module says); without ``argv``, every command is
    built with all its arguments."""
    parser = argparse.ArgumentParser(
        prog="envdeck",
        description="Terminal dashboard and CLI for local VMs, containers, forwards and processes.",
    )
    parser.add_argument("--theme", help="dashboard theme (see themes/)")
    parser.add_argument("--readonly", action="store_true", help="dashboard without actions")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    if argv is None:
        modules, registrar = command_modules(), Registrar(sub, None)
    else:
        word = command_word(argv)
        if word in COMMAND_MODULES:
            modules, registrar = [COMMAND_MODULES[word]], Registrar(sub, word)
        elif opens_dashboard(argv):  # no command to parse: none is imported (~40 ms)
            modules, registrar = [], Registrar(sub, "")
        else:  # help or an unknown command: names and help only
            modules, registrar = command_modules(), Registrar(sub, "")
    for name in modules:
        module = importlib.import_module(f"{__package__}.{name}")
        register = getattr(module, "register", None)
        if register is not None:
            register(registrar)
    return parser


def dashboard_module(name: str) -> Any:
    """``envdeck.tui.NAME``, imported lazily (the backend never imports Textual); one clear
    error, naming what is missing, when this build has no dashboard."""
    try:
        return importlib.import_module(f"envdeck.tui.{name}")
    except ModuleNotFoundError as exc:
        raise EnvdeckError(
            f"the dashboard is not available in this build (no module {exc.name})",
            hint="use the CLI commands ('envdeck --help')",
        ) from exc


def open_dashboard(args: argparse.Namespace) -> int:
    """Open the Textual dashboard; its process tree takes its first scan meanwhile."""
    from envdeck.backend.live import LiveStart

    gc.disable()  # (the dashboard's start allocates much and frees little; it re-enables it)
    live = LiveStart()  # (in a thread, while the dashboard's modules load: ~0.2 s)
    tui = dashboard_module("app")
    return int(tui.run_dashboard(theme=args.theme, readonly=args.readonly, live=live) or 0)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``envdeck`` console script."""
    argv = sys.argv[1:] if argv is None else argv
    parser = build_parser(argv)
    args = parser.parse_args(argv)
    try:
        func = getattr(args, "func", None)
        if func is None:
            return open_dashboard(args)
        return int(func(args) or 0)
    except EnvdeckError as exc:
        from envdeck.backend.cli import output

        output.error(exc)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
