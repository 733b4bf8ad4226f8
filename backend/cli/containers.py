"""CLI commands for Docker containers: ``envdeck containers`` and ``envdeck container ACTION``."""

from __future__ import annotations

import argparse
import os
import sys
import time
from typing import TYPE_CHECKING

from envdeck.backend.cli.output import (
    cell,
    console,
    err_console,
    human_bytes,
    line,
    print_json,
    terminal_line,
)
from envdeck.backend.errors import EnvdeckError, UserInputError
from envdeck.backend.events import ContainerInfo

if TYPE_CHECKING:
    from rich.text import Text

# rich and the Docker side (containers.source and what it pulls in) are imported where used.

STATE_STYLE = {
    "running": "green",
    "paused": "yellow",
    "restarting": "yellow",
    "created": "dim",
    "exited": "dim",
    "dead": "red",
}


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``containers`` (list) and ``container`` (one container's actions)."""
    p = sub.add_parser("containers", help="list Docker containers of the host and instances")
    p.add_argument(
        "--endpoint",
        "-e",
        help="host, instance:NAME, context:NAME or a URL (default: every endpoint found)",
    )
    p.add_argument("--all", "-a", action="store_true", help="include stopped containers")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_list)

    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--endpoint", "-e", help="host (default), instance:NAME, context:NAME")
    p = sub.add_parser("container", help="act on one container: start, stop, logs, shell, ...")
    actions = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    for action in ("start", "stop", "restart", "pause", "unpause"):
        a = actions.add_parser(action, parents=[common], help=f"{action} a container")
        a.add_argument("name")
        if action in ("stop", "restart"):
            a.add_argument(
                "--time",
                "-t",
                type=int,
                default=10,
                help="seconds to wait before killing (default 10)",
            )
        a.set_defaults(func=cmd_action)
    a = actions.add_parser("remove", aliases=["rm"], parents=[common], help="remove a container")
    a.add_argument("name")
    a.add_argument("--force", "-f", action="store_true", help="remove it even if it runs")
    a.add_argument("--yes", "-y", action="store_true", help="do not ask before --force")
    a.set_defaults(func=cmd_remove, action="remove")
    a = actions.add_parser("logs", parents=[common], help="print (and follow) a container's logs")
    a.add_argument("name")
    a.add_argument("-f", "--follow", action="store_true")
    a.add_argument("--tail", "-n", default="200", help="lines from the end (default 200, or all)")
    a.add_argument("--timestamps", "-t", action="store_true")
    a.set_defaults(func=cmd_logs)
    a = actions.add_parser(
        "shell", parents=[common], help="interactive shell in a container (docker exec -it)"
    )
    a.add_argument("name")
    a.add_argument("command", nargs=argparse.REMAINDER, help="command instead of sh")
    a.set_defaults(func=cmd_shell)
    a = actions.add_parser("stats", parents=[common], help="CPU and memory of one container")
    a.add_argument("name")
    a.add_argument("--json", action="store_true")
    a.set_defaults(func=cmd_stats)


def _platform_text(row: ContainerInfo) -> Text:
    if not row.platform:
        return cell("-")
    return (
        cell(f"{row.platform} (emulated)", "bold magenta") if row.emulated else cell(row.platform)
    )


def cmd_list(args: argparse.Namespace) -> int:
    """``envdeck containers``: a table (or JSON) of containers, per endpoint."""
    from envdeck.backend.containers import source as containers
    from envdeck.backend.containers.endpoints import discover, resolve
    from envdeck.backend.containers.rows import info_json

    endpoints = [resolve(args.endpoint)] if args.endpoint else discover()
    rows: list[ContainerInfo] = []
    failures = 0
    for endpoint in endpoints:
        try:
            rows += containers.list_containers(endpoint, all=args.all)
        except EnvdeckError as exc:
            if args.endpoint:
                raise
            failures += 1
            err_console.print(
                line((f"{endpoint.name}:", "yellow"), f" unreachable: {exc.message}"),
                soft_wrap=True,
            )
    if failures == len(endpoints):
        raise EnvdeckError("no docker endpoint answered", hint="is dockerd running?")
    if args.json:
        print_json([info_json(row) for row in rows])
        return 0
    from rich.table import Table

    table = Table(box=None, pad_edge=False, header_style="bold")
    show_endpoint = len(endpoints) > 1
    for column in (["ENDPOINT"] if show_endpoint else []) + [
        "NAME",
        "ID",
        "IMAGE",
        "STATE",
        "STATUS",
        "PORTS",
        "PLATFORM",
    ]:
        table.add_column(column, no_wrap=column in ("NAME", "ID", "STATE"))
    for row in rows:
        style = STATE_STYLE.get(row.state, "")
        cells = [
            cell(row.name),
            cell(row.id[:12]),
            cell(row.image),
            cell(row.state, style),
            cell(row.status),
            cell(", ".join(row.ports) or "-"),
            _platform_text(row),
        ]
        table.add_row(*([cell(row.endpoint)] if show_endpoint else []), *cells)
    if rows:
        console.print(table)
    else:
        console.print("no containers" + ("" if args.all else " running (--all shows stopped ones)"))
    return 0


def cmd_action(args: argparse.Namespace) -> int:
    """start / stop / restart / pause / unpause."""
    import asyncio

    from envdeck.backend.containers import source as containers

    doing = {"stop": "stopping", "restart": "restarting"}.get(args.action)
    if doing:  # Docker waits up to --time seconds for the container to stop: say so at once
        console.print(line(f"{doing} {args.name}…"))
    text = asyncio.run(
        containers.container_action(
            args.endpoint, args.name, args.action, stop_timeout=getattr(args, "time", 10)
        )
    )
    console.print(line(text))
    return 0


def cmd_remove(args: argparse.Namespace) -> int:
    """remove: a running container only with --force, after a confirmation (or --yes)."""
    import asyncio

    from envdeck.backend.containers import source as containers

    if args.force and not args.yes:
        if not sys.stdin.isatty():
            raise UserInputError(
                f"refusing to force-remove {args.name!r} without confirmation", hint="add --yes"
            )
        answer = console.input(line(f"remove {args.name} even if it is running? [y/N] "))
        if answer.strip().lower() not in ("y", "yes"):
            console.print("not removed")
            return 1
    text = asyncio.run(
        containers.container_action(args.endpoint, args.name, "remove", force=args.force)
    )
    console.print(line(text))
    return 0


def _tail(text: str) -> int | None:
    if text == "all":
        return None
    try:
        value = int(text)
    except ValueError:
        raise UserInputError(
            f"--tail {text!r}: not a number", hint="e.g. --tail 50, or all"
        ) from None
    if value < 0:
        raise UserInputError("--tail must be 0 or more")
    return value


def cmd_logs(args: argparse.Namespace) -> int:
    """logs: print the tail, then follow with -f until Ctrl-C."""
    from envdeck.backend.containers import source as containers

    stream = containers.logs(
        args.endpoint,
        args.name,
        tail=_tail(args.tail),
        follow=args.follow,
        timestamps=args.timestamps,
    )
    try:
        for text in stream:
            sys.stdout.write(terminal_line(text) + "\n")
            if args.follow:
                sys.stdout.flush()
    finally:
        stream.close()
    return 0


def cmd_shell(args: argparse.Namespace) -> int:
    """shell: replace this process with ``docker exec -it`` (a real tty)."""
    from envdeck.backend.containers import source as containers

    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    argv = containers.shell_argv(args.endpoint, args.name, command or None)
    if not sys.stdin.isatty():  # piped input: no tty to allocate (as 'envdeck shell' does)
        argv = ["-i" if arg == "-it" else arg for arg in argv]
    sys.stdout.flush()
    os.execvp(argv[0], argv)
    return 1  # pragma: no cover - execvp does not return


def cmd_stats(args: argparse.Namespace) -> int:
    """stats: one on-demand sample of CPU, memory, pids and I/O."""
    from rich.table import Table

    from envdeck.backend.containers import source as containers

    started = time.monotonic()
    data = containers.stats(args.endpoint, args.name)
    if args.json:
        print_json(data)
        return 0
    mem = human_bytes(data["memory_bytes"])
    limit = data["memory_limit_bytes"]
    if limit and limit < 1 << 60:
        mem += f" / {human_bytes(limit)} ({data['memory_percent']}%)"
    table = Table(box=None, show_header=False, pad_edge=False)
    for key, value in [
        ("container", f"{data['name']} ({data['id'][:12]}) on {data['endpoint']}"),
        ("state", data["state"]),
        (
            "cpu",
            f"{data['cpu_percent']}% (100% = one cpu; {data['online_cpus']} online), "
            f"{data['cpu_seconds']:.2f}s cpu time",
        ),
        ("memory", mem),
        ("pids", str(data["pids"])),
        ("net rx/tx", f"{human_bytes(data['net_rx_bytes'])} / {human_bytes(data['net_tx_bytes'])}"),
        (
            "block r/w",
            f"{human_bytes(data['block_read_bytes'])} / {human_bytes(data['block_write_bytes'])}",
        ),
        ("sampled", f"{time.monotonic() - started:.1f}s"),
    ]:
        table.add_row(cell(key, "bold"), cell(value))
    console.print(table)
    return 0
