"""``envdeck copy SRC DST`` (``limactl copy``): one file between the host and a running
instance, over its pinned-key SSH; ``NAME:PATH`` names a path in instance NAME."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import NamedTuple

from envdeck.backend.cli.output import console, err_console, human_bytes, line
from envdeck.backend.errors import UserInputError
from envdeck.backend.store import NAME_RE, InstanceDir

#: files at least this large show a progress bar (on a terminal)
PROGRESS_FROM = 4 << 20


class Endpoint(NamedTuple):
    """One side of a copy: a host path (instance None) or a path in an instance."""

    instance: str | None
    path: str


def endpoint(text: str) -> Endpoint:
    """``NAME:PATH`` when NAME is an instance name and PATH is not empty, else a host path."""
    name, sep, path = text.partition(":")
    if sep and path and NAME_RE.fullmatch(name):
        return Endpoint(name, path)
    return Endpoint(None, text)


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``copy SRC DST``."""
    p = sub.add_parser(
        "copy",
        help="copy a file between the host and an instance: copy SRC NAME:DST / NAME:SRC DST",
    )
    p.add_argument("source", metavar="SRC", help="a host path, or NAME:PATH in an instance")
    p.add_argument("dest", metavar="DST", help="a host path, or NAME:PATH in an instance")
    p.set_defaults(func=cmd_copy)


def cmd_copy(args: argparse.Namespace) -> int:
    """Check which side is the guest, then copy with progress for large files."""
    import asyncio

    src, dst = endpoint(args.source), endpoint(args.dest)
    if (src.instance is None) == (dst.instance is None):
        raise UserInputError(
            "exactly one side of a copy is in an instance",
            hint="envdeck copy ./file NAME:/tmp/  or  envdeck copy NAME:/etc/hostname .",
        )
    name = src.instance or dst.instance
    assert name is not None
    done = asyncio.run(_copy(name, src, dst))
    console.print(line(f"copied {human_bytes(done)}: {args.source} -> {args.dest}"))
    return 0


async def _copy(name: str, src: Endpoint, dst: Endpoint) -> int:
    from rich.progress import BarColumn, DownloadColumn, Progress, TransferSpeedColumn

    from envdeck.backend.instances import api as instances
    from envdeck.backend.ssh import client as ssh
    from envdeck.backend.ssh import copy as ssh_copy

    inst = InstanceDir.existing(name)
    info = await instances.status(name)
    if info["state"] == "paused":
        raise instances.paused_error(name)
    if info["state"] not in ("ready", "degraded") or not info["ssh_port"]:
        raise UserInputError(
            f"instance {name!r} is {info['state']}", hint=f"start it: 'envdeck start {name}'"
        )
    bar = Progress(
        "{task.description}",
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        console=err_console,
        transient=True,
        disable=not err_console.is_terminal,
    )
    task = bar.add_task(Path(src.path).name, total=None)

    def progress(done: int, total: int) -> None:
        if total >= PROGRESS_FROM:
            bar.update(task, completed=done, total=total)

    conn = await ssh.connect(inst, info["ssh_port"])
    try:
        with bar:
            if dst.instance is not None:
                return await ssh_copy.upload(conn, Path(src.path), dst.path, progress)
            return await ssh_copy.download(conn, src.path, Path(dst.path), progress)
    finally:
        conn.close()
