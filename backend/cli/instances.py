"""CLI commands for instances: create, start, stop, restart, delete, list, logs, shell, exec, up.

Imports stay light at the top (``envdeck list`` of stopped instances reads files only): rich's
widgets, asyncio and the instances API are imported by the commands that use them.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from envdeck.backend.cli.output import (
    LazyChoices,
    cell,
    console,
    err_console,
    human_bytes,
    human_duration,
    line,
    print_json,
    terminal_line,
)
from envdeck.backend.errors import UserInputError
from envdeck.backend.store import InstanceDir, list_instances

if TYPE_CHECKING:
    from rich.live import Live
    from rich.text import Text

    from envdeck.backend.events import Event

STATE_STYLE = {
    "ready": "green",
    "booting": "yellow",
    "starting": "yellow",
    "stopping": "yellow",
    "stopped": "dim",
    "crashed": "bold red",
    "degraded": "red",
    "paused": "cyan",
    "suspended": "blue",
}


CONFIG = "envdeck.backend.config"


def _size(text: str) -> int:
    from envdeck.backend.config import parse_size

    try:
        return parse_size(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{text!r}: {exc}; use e.g. 512MiB or 2GiB") from None


def register(sub: argparse._SubParsersAction) -> None:
    """Add the instance commands."""
    p = sub.add_parser("create", help="create an instance (default: the built-in tiny guest)")
    p.add_argument("name")
    p.add_argument("--template", choices=LazyChoices(CONFIG, "TEMPLATES"), default="tiny")
    p.add_argument("-f", "--file", type=Path, help="instance YAML (Lima-compatible subset)")
    p.add_argument("--cpus", type=int)
    p.add_argument("--memory", type=_size, help="e.g. 512MiB")
    p.add_argument("--disk", type=_size, help="e.g. 2GiB")
    p.add_argument("--arch", choices=LazyChoices(CONFIG, "ARCHES"))
    p.add_argument("--accel", choices=LazyChoices(CONFIG, "ACCELS"))
    p.add_argument(
        "--mount-writable",
        action="store_true",
        help="the docker template's home mount writable (read-only by default)",
    )
    p.set_defaults(func=cmd_create)

    p = sub.add_parser("start", help="start an instance and follow its boot stages")
    p.add_argument("name")
    p.add_argument("--no-wait", action="store_true", help="return once the agent has it")
    p.add_argument("--timeout", type=float, default=600)
    p.set_defaults(func=cmd_start)

    p = sub.add_parser("stop", help="power an instance down (ACPI, then QMP quit, then kill)")
    p.add_argument("name")
    p.add_argument("--timeout", type=float, default=20, help="seconds to wait for the guest")
    p.set_defaults(func=cmd_stop)

    p = sub.add_parser("pause", help="freeze a running instance (QMP stop); 'resume' continues it")
    p.add_argument("name")
    p.set_defaults(func=cmd_pause)

    p = sub.add_parser("resume", help="let a paused instance run again")
    p.add_argument("name")
    p.set_defaults(func=cmd_resume)

    p = sub.add_parser(
        "suspend", help="save a running instance to disk and stop it; 'start' resumes it"
    )
    p.add_argument("name")
    p.set_defaults(func=cmd_suspend)

    p = sub.add_parser("restart", help="stop and start an instance")
    p.add_argument("name")
    p.set_defaults(func=cmd_restart)

    p = sub.add_parser("delete", help="delete an instance and its files")
    p.add_argument("name")
    p.add_argument("--force", action="store_true", help="stop it first if it runs")
    p.set_defaults(func=cmd_delete)

    p = sub.add_parser("list", aliases=["ls"], help="list instances")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_list)

    p = sub.add_parser("logs", help="print (and follow) an instance's serial console")
    p.add_argument("name")
    p.add_argument("-f", "--follow", action="store_true")
    p.set_defaults(func=cmd_logs)

    p = sub.add_parser("shell", help="interactive shell in the guest (SSH, host key pinned)")
    p.add_argument("name")
    p.set_defaults(func=cmd_shell)

    p = sub.add_parser("exec", help="run a command in the guest: envdeck exec NAME -- CMD ARGS")
    p.add_argument("name")
    p.add_argument("command", nargs=argparse.REMAINDER)
    p.set_defaults(func=cmd_exec)

    p = sub.add_parser(
        "up", help="create (if needed) and start the tiny instance, then open the dashboard"
    )
    p.add_argument("name", nargs="?", default="default")
    p.add_argument("--no-dashboard", action="store_true", help="follow the serial log instead")
    p.set_defaults(func=cmd_up)


# --- create ---------------------------------------------------------------------------------


def _progress_printer() -> Any:
    last = {"text": ""}

    def progress(text: str, fraction: float | None) -> None:
        shown = f"{text} {fraction * 100:.0f}%" if fraction is not None else text
        if shown != last["text"]:
            last["text"] = shown
            err_console.print(line("  ", ("…", "cyan"), f" {shown}"))

    return progress


def cmd_create(args: argparse.Namespace) -> int:
    from envdeck.backend.config.mounts import HOME_TEMPLATES
    from envdeck.backend.instances import api as instances

    if args.file and any(
        v is not None for v in (args.cpus, args.memory, args.disk, args.arch, args.accel)
    ):
        raise UserInputError(
            "-f FILE and --cpus/--memory/--disk/--arch/--accel exclude each other",
            hint="put the values in the file",
        )
    if args.mount_writable and args.file:
        raise UserInputError(
            "-f FILE and --mount-writable exclude each other",
            hint="write 'writable: true' in the file's mounts: entries",
        )
    if args.mount_writable and args.template not in HOME_TEMPLATES:
        raise UserInputError(
            f"--mount-writable: the {args.template} template mounts nothing",
            hint=f"use it with --template {' or '.join(HOME_TEMPLATES)}, or share folders with"
            " mounts: in an instance file (-f)",
        )
    if args.cpus is not None and not 1 <= args.cpus <= 64:
        raise UserInputError(f"--cpus {args.cpus} is out of range", hint="use 1 to 64")
    err_console.print(line("creating ", (args.name, "bold")))
    inst = instances.create(
        args.name,
        template=args.template,
        cpus=args.cpus,
        memory_bytes=args.memory,
        disk_bytes=args.disk,
        arch=args.arch,
        accel=args.accel,
        file=args.file,
        mount_writable=args.mount_writable,
        progress=_progress_printer(),
    )
    console.print(line(("created", "green"), f" {args.name} in {inst.root}"))
    console.print(line(f"start it with: envdeck start {args.name}"))
    return 0


# --- start / stop -------------------------------------------------------------------------


class StagePrinter:
    """Print boot stages as they complete, with timings; say clearly what stalls.

    In a terminal the stage in progress is one live line (rich's live display) that its
    ``✓`` line replaces; elsewhere each ``… stage`` is a plain line of its own."""

    def __init__(self, name: str, show_serial: bool = False) -> None:
        self.name = name
        self.show_serial = show_serial
        self._live: Live | None = None

    def _running(self, text: Text) -> None:
        if not err_console.is_terminal:
            err_console.print(text)
            return
        if self._live is None:
            from rich.live import Live

            self._live = Live(console=err_console, transient=True, auto_refresh=False)
            self._live.start()
        self._live.update(text, refresh=True)

    def _print(self, text: Text) -> None:
        """A line that stays (printed above the live line, which it clears)."""
        if self._live is not None:
            from rich.text import Text

            self._live.update(Text(""), refresh=True)
        err_console.print(text)

    def close(self) -> None:
        """End the live line (once the boot is followed)."""
        if self._live is not None:
            self._live.stop()
            self._live = None

    def __call__(self, event: Event) -> None:
        from envdeck.backend.events import AgentMessage, BootStage, InstanceStatus, SerialOutput

        if isinstance(event, BootStage):
            if event.status == "done":
                detail = (f"  {event.detail}", "dim") if event.detail else ""
                self._print(
                    line(
                        "  ", ("✓", "green"), f" {event.stage:<22} {event.elapsed_s:6.2f}s", detail
                    )
                )
            elif event.status == "running":
                self._running(line("  ", (f"… {event.stage}", "dim")))
            else:
                self._print(
                    line(
                        "  ",
                        ("!", "red"),
                        f" {event.stage} {event.status} after {event.elapsed_s:.0f}s: "
                        f"{event.detail}",
                    )
                )
        elif isinstance(event, AgentMessage):
            style = {"warning": "yellow", "error": "red"}.get(event.level, "dim")
            self._print(line("  ", (f"{event.level}:", style), f" {event.text}"))
        elif isinstance(event, SerialOutput) and self.show_serial:
            for text in event.lines:
                sys.stdout.write(terminal_line(text) + "\n")
        elif isinstance(event, InstanceStatus) and event.state in ("crashed", "degraded"):
            self._print(line("  ", (event.state, "red"), f": {event.reason}"))


def _leave_to_exit() -> None:
    """What is alive now lives until the process exits: freeze it, so the collector's passes at
    interpreter exit skip it (~40 ms of `start`'s wall time here, after the instance is ready)."""
    import gc

    gc.freeze()


def cmd_start(args: argparse.Namespace) -> int:
    from envdeck.backend.instances.launch import launch_now

    # The agent first (it launches QEMU while this process imports rich, asyncio and the API):
    # anything imported before this line delays the boot.
    launched = launch_now(args.name)
    import asyncio

    from envdeck.backend.instances import api as instances

    err_console.print(line("starting ", (args.name, "bold")))
    printer = StagePrinter(args.name)
    try:
        result = asyncio.run(
            instances.start(
                args.name,
                wait=not args.no_wait,
                on_event=printer,
                timeout=args.timeout,
                launched=launched,
            )
        )
    finally:
        printer.close()
    _leave_to_exit()
    state = result["state"]
    if state == "ready":
        console.print(
            line(
                (f"{args.name} is ready", "green"),
                f" (ssh port {result['ssh_port']}, accel {result['accel']})",
            )
        )
        return 0
    if args.no_wait:
        console.print(
            f"{args.name}: {state} (the agent keeps booting it; 'envdeck logs -f {args.name}')"
        )
        return 0
    console.print(line((f"{args.name} is {state}", "red"), f": {result['reason']}"))
    return 1


def cmd_stop(args: argparse.Namespace) -> int:
    import asyncio

    from envdeck.backend.instances import api as instances

    result = asyncio.run(instances.stop(args.name, timeout=args.timeout))
    how = result.get("how", "already")
    said = result["text"]
    if how not in ("already", "discard"):
        said = f"stopped by {how}: {said}"
    console.print(line(f"{args.name}: {said}"))
    return 0


def cmd_pause(args: argparse.Namespace) -> int:
    import asyncio

    from envdeck.backend.instances import api as instances

    console.print(f"{args.name}: {asyncio.run(instances.pause(args.name))['text']}")
    return 0


def cmd_resume(args: argparse.Namespace) -> int:
    import asyncio

    from envdeck.backend.instances import api as instances

    console.print(f"{args.name}: {asyncio.run(instances.resume(args.name))['text']}")
    return 0


def cmd_suspend(args: argparse.Namespace) -> int:
    import asyncio

    from envdeck.backend.instances import api as instances

    console.print(line(f"{args.name}: {asyncio.run(instances.suspend(args.name))['text']}"))
    return 0


def cmd_restart(args: argparse.Namespace) -> int:
    import asyncio

    from envdeck.backend.instances import api as instances

    printer = StagePrinter(args.name)
    try:
        result = asyncio.run(instances.restart(args.name, on_event=printer))
    finally:
        printer.close()
    console.print(f"{args.name}: {result['state']}")
    return 0 if result["state"] == "ready" else 1


def cmd_delete(args: argparse.Namespace) -> int:
    import asyncio

    from envdeck.backend.instances import api as instances

    console.print(asyncio.run(instances.delete(args.name, force=args.force)))
    return 0


# --- list ---------------------------------------------------------------------------------


def cmd_list(args: argparse.Namespace) -> int:
    from envdeck.backend.instances.status import list_rows

    rows = list_rows()
    if args.json:
        print_json(rows)
        return 0
    if not rows:
        console.print(
            "no instances yet — create the tiny one: [bold]envdeck up[/] "
            "(or envdeck create NAME && envdeck start NAME)"
        )
        return 0
    from rich.table import Table

    table = Table(box=None, header_style="bold")
    for column in ("NAME", "STATE", "ARCH", "ACCEL", "CPUS", "MEMORY", "DISK", "SSH", "UPTIME"):
        table.add_column(column)
    for row in rows:
        style = STATE_STYLE.get(row["state"], "")
        table.add_row(
            cell(row["name"]),
            cell(row["state"], style),
            cell(row["arch"]),
            cell(row["accel"] or "-"),
            str(row["cpus"]),
            human_bytes(row["memory_bytes"]),
            human_bytes(row["disk_bytes"]),
            str(row["ssh_port"] or "-"),
            human_duration(row["uptime_s"]),
        )
    console.print(table)
    for row in rows:
        if row["reason"]:
            console.print(line((row["name"], "red"), f": {row['reason']}"))
    return 0


# --- logs -----------------------------------------------------------------------------------


def _print_file(path: Path, limit: int | None = None) -> None:
    """A serial log file on stdout: exact when piped, control characters visible on a terminal."""
    with open(path, "rb") as handle:
        data = handle.read() if limit is None else handle.read(limit)
    text = data.decode("utf-8", "replace")
    if sys.stdout.isatty():
        text = "\n".join(terminal_line(row) for row in text.split("\n"))
    sys.stdout.write(text)
    sys.stdout.flush()


def cmd_logs(args: argparse.Namespace) -> int:
    import asyncio

    from envdeck.backend.instances import api as instances
    from envdeck.backend.vm import serial

    inst = InstanceDir.existing(args.name)
    if not args.follow or not instances.agent_running(inst):
        for path in serial.log_files(inst.serial_log):
            _print_file(path)
        if args.follow:
            err_console.print(line((f"{args.name} is not running: nothing to follow", "yellow")))
        return 0
    return asyncio.run(_follow(inst))


async def _follow(inst: InstanceDir) -> int:
    """Print the log up to the agent's current offset, then the agent's live stream."""
    from envdeck.backend.agent.client import AgentClient
    from envdeck.backend.events import SerialOutput
    from envdeck.backend.vm import serial

    client = await AgentClient.connect(inst.agent_sock, timeout=5)
    try:
        where = await client.follow_serial()
        files = serial.log_files(inst.serial_log)
        for path in files[:-1]:
            _print_file(path)
        if files:
            _print_file(files[-1], where["offset"])
        async for event in client.events():
            if isinstance(event, SerialOutput):
                sys.stdout.write("\n".join(terminal_line(row) for row in event.lines) + "\n")
                sys.stdout.flush()
    finally:
        await client.close()
    return 0


# --- shell / exec ---------------------------------------------------------------------------


def cmd_shell(args: argparse.Namespace) -> int:
    from envdeck.backend.instances import api as instances

    argv = instances.shell_argv(args.name)
    sys.stdout.flush()
    os.execvp(argv[0], argv)
    return 127  # pragma: no cover - exec does not return


def cmd_exec(args: argparse.Namespace) -> int:
    import asyncio

    command = [c for c in args.command]
    if command and command[0] == "--":
        command = command[1:]
    if not command:
        raise UserInputError("no command given", hint=f"envdeck exec {args.name} -- uname -a")
    return asyncio.run(_exec(args.name, command))


async def _exec(name: str, command: list[str]) -> int:
    import shlex

    from envdeck.backend.instances import api as instances
    from envdeck.backend.ssh import client as ssh

    inst = InstanceDir.existing(name)
    info = await instances.status(name)
    if info["state"] == "paused":
        raise instances.paused_error(name)
    if info["state"] not in ("ready", "degraded") or not info["ssh_port"]:
        raise UserInputError(
            f"instance {name!r} is {info['state']}", hint=f"start it: 'envdeck start {name}'"
        )
    conn = await ssh.connect(inst, info["ssh_port"])
    try:
        result = await conn.run(shlex.join(command), check=False, encoding=None)
    finally:
        conn.close()
    sys.stdout.buffer.write(cast(bytes, result.stdout or b""))  # encoding=None: bytes
    sys.stderr.buffer.write(cast(bytes, result.stderr or b""))
    sys.stdout.flush()
    return int(result.exit_status if result.exit_status is not None else 255)


# --- up -------------------------------------------------------------------------------------


def cmd_up(args: argparse.Namespace) -> int:
    if args.name not in list_instances():
        cmd_create(
            argparse.Namespace(
                name=args.name,
                template="tiny",
                file=None,
                cpus=None,
                memory=None,
                disk=None,
                arch=None,
                accel=None,
            )
        )
    code = cmd_start(argparse.Namespace(name=args.name, no_wait=False, timeout=600))
    if code != 0:
        return code
    if args.no_dashboard:
        return cmd_logs(argparse.Namespace(name=args.name, follow=True))
    from envdeck.backend.cli.main import open_dashboard

    return open_dashboard(argparse.Namespace(theme=None, readonly=False))
