"""``envdeck binfmt``: list binfmt_misc handlers (host or guest); register/unregister QEMU ones."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from envdeck.backend.cli.output import cell, console, line, print_json
from envdeck.backend.units import plural

if TYPE_CHECKING:
    from envdeck.backend.processes.binfmt import Registry


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``binfmt``, ``binfmt register ARCH...``, ``binfmt unregister ARCH...``."""
    p = sub.add_parser("binfmt", help="binfmt_misc handlers (which foreign binaries run how)")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("--instance", metavar="NAME", help="the handlers of a running instance")
    p.set_defaults(func=cmd_list)
    actions = p.add_subparsers(dest="binfmt_action", metavar="ACTION")
    r = actions.add_parser("register", help="register qemu-ARCH (needs root, binfmt_misc mounted)")
    r.add_argument("arch", nargs="+", help="aarch64, arm, riscv64, ...")
    r.add_argument("--flags", default="F", help="binfmt flags from P, O, C, F (default F)")
    r.set_defaults(func=cmd_register)
    u = actions.add_parser("unregister", help="remove handlers (by arch or handler name)")
    u.add_argument("arch", nargs="+", help="aarch64 (= qemu-aarch64) or a handler name")
    u.set_defaults(func=cmd_unregister)


def _guest_registry(instance: str) -> Registry:
    from envdeck.backend.cli.ps import guest_exec
    from envdeck.backend.processes import binfmt

    return binfmt.parse_dump(guest_exec(instance, binfmt.GUEST_BINFMT_SCRIPT))


def cmd_list(args: argparse.Namespace) -> int:
    """List the handlers; an unmounted registry is shown, not an error."""
    from envdeck.backend.processes import binfmt

    registry = _guest_registry(args.instance) if args.instance else binfmt.read_registry()
    if args.json:
        print_json(registry.to_dict())
        return 0
    if registry.error:
        console.print(line((registry.error, "yellow")))
        if not registry.mounted:
            console.print(
                "[dim]mount it: sudo mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc[/]"
            )
        return 0
    from rich.table import Table

    table = Table(box=None, pad_edge=False, header_style="bold")
    for col in ("NAME", "ENABLED", "ARCH", "FLAGS", "INTERPRETER"):
        table.add_column(col, no_wrap=True)
    for h in registry.handlers:
        table.add_row(
            cell(h.name),
            "yes" if h.enabled else "[red]no[/]",
            cell(h.arch or (f"ext .{h.magic}" if h.kind == "extension" else "?")),
            cell(h.flags or "-"),
            cell(h.interpreter),
        )
    console.print(table)
    state = "enabled" if registry.enabled else "[red]disabled[/]"
    count = plural(len(registry.handlers), "handler")
    console.print(f"[dim]{count}, binfmt_misc {state}[/]")
    return 0


def cmd_register(args: argparse.Namespace) -> int:
    """Register qemu-ARCH handlers, one line per arch; bad flags are refused before any."""
    from envdeck.backend.processes import binfmt

    flags = args.flags.upper()
    binfmt.check_flags(flags)
    for arch in args.arch:
        console.print(line(f"qemu-{arch}: {binfmt.register_arch(arch, flags=flags)}"))
    return 0


def cmd_unregister(args: argparse.Namespace) -> int:
    """Remove handlers by arch or name; every name is checked before any is removed."""
    from envdeck.backend.processes import binfmt

    for name in args.arch:
        binfmt.check_handler_name(name)
    for name in args.arch:
        binfmt.unregister(name)
        console.print(line(f"{name}: removed"))
    return 0
