"""``envdeck ps`` (host or guest process tree, emulated processes marked) and ``envdeck kill``."""

from __future__ import annotations

import argparse
import signal
import sys
import time
from typing import TYPE_CHECKING

from envdeck.backend.cli.output import (
    LazyChoices,
    cell,
    console,
    human_bytes,
    human_duration,
    line,
    print_json,
)
from envdeck.backend.errors import EnvdeckError, NotFound, UserInputError
from envdeck.backend.text import visible

if TYPE_CHECKING:
    from rich.table import Table

    from envdeck.backend.processes.model import ProcessRow
    from envdeck.backend.processes.view import Predicate

# rich, psutil (processes.host), the process model, asyncio and asyncssh are imported by the
# functions using them.

SIGNALS = {
    "TERM": signal.SIGTERM,
    "KILL": signal.SIGKILL,
    "INT": signal.SIGINT,
    "HUP": signal.SIGHUP,
}


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``ps`` and ``kill``."""
    p = sub.add_parser("ps", help="process tree of the host or an instance (emulated marked)")
    p.add_argument("--instance", metavar="NAME", help="a running instance's processes (over SSH)")
    p.add_argument("--tree", action="store_true", help="tree order with indentation")
    p.add_argument("--emulated", action="store_true", help="only processes under QEMU emulation")
    p.add_argument("--json", action="store_true", help="machine-readable list of rows")
    p.add_argument(
        "--sort",
        choices=LazyChoices("envdeck.backend.processes.view", "SORT_ORDER"),
        default=None,
        help="flat order (default pid; cpu and mem descending)",
    )
    p.add_argument(
        "--filter",
        metavar="REGEX",
        help="case-insensitive regex over 'PID USER CONTAINER COMMAND' and the name; ! inverts",
    )
    p.add_argument("--user", metavar="USER", help="only this user's processes")
    p.add_argument("--container", metavar="NAME", help="only processes of this container")
    p.set_defaults(func=cmd_ps)

    k = sub.add_parser("kill", help="signal a process (asks first; refuses a reused pid)")
    k.add_argument("pid", type=int)
    k.add_argument("--signal", "-s", choices=sorted(SIGNALS), default="TERM")
    k.add_argument("--yes", "-y", action="store_true", help="do not ask")
    k.add_argument("--instance", metavar="NAME", help="a process in this running instance")
    k.set_defaults(func=cmd_kill)


def _filter(args: argparse.Namespace) -> Predicate | None:
    """The rows to keep; an invalid regex is a UserInputError (exit 2), before any scan."""
    from envdeck.backend.processes.view import RowFilter

    flt = RowFilter(
        text=args.filter, user=args.user, container=args.container, emulated_only=args.emulated
    )
    return flt.predicate()


def guest_exec(instance: str, script: str) -> str:
    """Run ``script`` in a running instance over its pinned-key SSH; stdout (undecodable bytes
    replaced). SSH failures become one EnvdeckError saying the guest is unavailable."""
    import asyncio

    from envdeck.backend.ssh import client as ssh
    from envdeck.backend.store import InstanceDir

    inst = InstanceDir.existing(instance)
    port = inst.read_state().get("ssh_port")
    if not port:
        raise UserInputError(
            f"instance {instance!r} is not running", hint=f"start it: 'envdeck start {instance}'"
        )

    async def run() -> str:
        conn = await ssh.connect(inst, int(port), timeout=5)
        try:
            result = await conn.run(script, check=False, errors="replace")
        finally:
            conn.close()
        return str(result.stdout or "")

    try:
        return asyncio.run(run())
    except EnvdeckError:
        raise
    except Exception as exc:  # noqa: BLE001 - SSH failures come in many types
        raise EnvdeckError(
            f"processes of {instance!r} are unavailable: {exc or type(exc).__name__}",
            hint=f"is the guest up? 'envdeck status {instance}'",
        ) from exc


def _guest_rows(instance: str) -> list[ProcessRow]:
    """One /proc walk of a running instance."""
    from envdeck.backend.containers.endpoints import instance_container_names
    from envdeck.backend.processes.guest import GUEST_WALK_SCRIPT, parse_guest_walk

    names = instance_container_names(instance)  # a container's processes show its name
    text = guest_exec(instance, GUEST_WALK_SCRIPT)
    return parse_guest_walk(text, instance, container_name=names).rows()


def render(rows: list[ProcessRow], tree: bool) -> Table:
    """The rich table of rows; emulated processes in magenta with their arch. Every value from a
    process is a cell made visible (an OSC, a newline or ``[red]`` in a command line shows as
    text, on its own row)."""
    from rich.console import JustifyMethod
    from rich.table import Table
    from rich.text import Text

    from envdeck.backend.processes.view import command_text

    table = Table(box=None, pad_edge=False, header_style="bold", expand=False)
    with_container = any(r["container"] for r in rows)
    columns: tuple[tuple[str, JustifyMethod, int], ...] = (
        ("PID", "right", 7),
        ("USER", "left", 8),
        ("S", "left", 1),
        ("CPU%", "right", 5),
        ("RSS", "right", 7),
        ("AGE", "right", 6),
    )
    for col, justify, width in columns:
        table.add_column(col, justify=justify, no_wrap=True, min_width=width)
    if with_container:
        table.add_column("CONTAINER", no_wrap=True, min_width=12, max_width=20)
    fixed = 46 + (22 if with_container else 0)
    table.add_column(
        "COMMAND", overflow="ellipsis", no_wrap=True, max_width=max(20, console.width - fixed)
    )
    now = time.time()
    for row in rows:
        command = Text("  " * row["depth"] if tree else "")
        emu = row["emulated"]
        if emu:
            command.append(f"[{visible(emu['arch'])}] ", style="bold magenta")
            command.append(visible(command_text(row)), style="magenta")
        else:
            command.append(visible(command_text(row)), style="dim" if row["kernel"] else "")
        cells: list[str | Text] = [
            str(row["pid"]),
            cell(row["user"] or "?"),
            cell(row["state"]),
            f"{row['cpu_percent']:.1f}",
            human_bytes(row["rss_bytes"]),
            human_duration(max(now - row["start_time"], 0)) if row["start_time"] else "-",
        ]
        if with_container:
            cells.append(cell(row["container"] or ""))
        table.add_row(*cells, command)
    return table


def cmd_ps(args: argparse.Namespace) -> int:
    """List processes."""
    from envdeck.backend.processes.host import snapshot, tree_order
    from envdeck.backend.processes.view import select

    keep = _filter(args)
    rows = tree_order(_guest_rows(args.instance)) if args.instance else snapshot().rows()
    rows = select(rows, keep, tree=args.tree, sort=args.sort or "pid")
    if args.json:
        print_json(rows)
        return 0
    console.print(render(rows, args.tree))
    emulated = sum(1 for r in rows if r["emulated"])
    console.print(f"[dim]{len(rows)} processes, {emulated} emulated[/]")
    return 0


def _confirm(args: argparse.Namespace, what: str) -> bool:
    if args.yes:
        return True
    if not sys.stdin.isatty():
        raise UserInputError(f"refusing to send SIG{args.signal} to {what} without --yes")
    answer = console.input(line(f"send SIG{args.signal} to {what}? [y/N] "))
    return answer.strip().lower() in ("y", "yes")


def cmd_kill(args: argparse.Namespace) -> int:
    """Signal one process after confirmation; the pid is pinned to its start time."""
    from envdeck.backend.processes.host import read_start_time, send_signal

    if args.instance:
        return _kill_in_guest(args)
    start = read_start_time(args.pid)
    try:
        with open(f"/proc/{args.pid}/cmdline", "rb") as fh:
            cmdline = fh.read().replace(b"\0", b" ").decode("utf-8", "replace")
    except OSError:
        cmdline = ""
    if not _confirm(args, f"{args.pid} ({cmdline.strip() or '?'})"):
        console.print("not sent")
        return 1
    send_signal(args.pid, start, SIGNALS[args.signal])
    console.print(f"sent SIG{args.signal} to {args.pid}")
    return 0


def _kill_in_guest(args: argparse.Namespace) -> int:
    from envdeck.backend.processes.guest import check_signal_result, guest_signal_script

    row = next((r for r in _guest_rows(args.instance) if r["pid"] == args.pid), None)
    if row is None:
        raise NotFound(f"no process {args.pid} in {args.instance!r}")
    if not _confirm(
        args, f"{args.pid} ({' '.join(row['cmdline']) or row['name']}) in {args.instance}"
    ):
        console.print("not sent")
        return 1
    script = guest_signal_script(args.pid, row["start_ticks"], args.signal)
    check_signal_result(guest_exec(args.instance, script), args.pid)
    console.print(f"sent SIG{args.signal} to {args.pid} in {args.instance}")
    return 0
