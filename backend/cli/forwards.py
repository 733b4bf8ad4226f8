"""CLI: `envdeck forwards NAME [--json]`, `envdeck forward NAME add|remove SPEC`."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from envdeck.backend.cli.output import cell, console, err_console, human_bytes, line, print_json
from envdeck.backend.forwards.publishers import publishers

if TYPE_CHECKING:
    from envdeck.backend.events import ContainerInfo

STATE_STYLE = {"active": "green", "conflict": "yellow", "failed": "red"}


def register(sub: argparse._SubParsersAction) -> None:
    """Add the forward commands."""
    p = sub.add_parser("forwards", help="list an instance's port forwards")
    p.add_argument("name")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_forwards)

    p = sub.add_parser("forward", help="add or remove a port forward at runtime")
    p.add_argument("name")
    p.add_argument("action", choices=("add", "remove"))
    p.add_argument("spec", help="add: GUEST[:HOST] or GUEST:HOSTIP:HOST; remove: GUEST")
    p.set_defaults(func=cmd_forward)


def cmd_forwards(args: argparse.Namespace) -> int:
    import asyncio

    from rich.table import Table

    from envdeck.backend.instances import api as instances

    rows = asyncio.run(instances.forwards(args.name))
    containers = _running_containers(args.name) if rows else []
    for row in rows:
        row["published_by"] = publishers(str(row["guest"]), containers)
    if args.json:
        print_json(rows)
        return 0
    if not rows:
        console.print(
            line(
                f"{args.name} has no forwards (guest services that listen are forwarded "
                "automatically)"
            )
        )
        return 0
    table = Table(box=None, header_style="bold")
    for column in ("GUEST", "HOST", "SOURCE", "STATE", "CONNS", "IN", "OUT"):
        table.add_column(column)
    for row in rows:
        style = STATE_STYLE.get(row["state"], "")
        by = ", ".join(row["published_by"])
        table.add_row(
            cell(row["guest"]),
            cell(row["host"]),
            cell(f"{row['source']} ← {by}" if by else row["source"]),
            cell(row["state"], style),
            str(row["connections"]),
            human_bytes(row["bytes_in"]),
            human_bytes(row["bytes_out"]),
        )
    console.print(table)
    for row in rows:
        if row["reason"]:
            console.print(line((row["guest"], "yellow"), f": {row['reason']}"))
    return 0


def _running_containers(name: str) -> list[ContainerInfo]:
    """The running containers of instance ``name``'s own dockerd (they publish its forwarded
    ports); none when it has no docker socket or the daemon does not answer."""
    from envdeck.backend.containers.endpoints import instance_endpoints, make_client
    from envdeck.backend.containers.rows import to_info

    endpoint = next((e for e in instance_endpoints() if e.name == f"instance:{name}"), None)
    if endpoint is None:
        return []
    try:
        client = make_client(endpoint, timeout=3)
        try:
            return [to_info(endpoint.name, a, None, None) for a in client.api.containers()]
        finally:
            client.close()
    except Exception:  # noqa: BLE001 - an unreachable daemon only means no names
        return []


def cmd_forward(args: argparse.Namespace) -> int:
    import asyncio

    from envdeck.backend.instances import api as instances

    if args.action == "add":
        row = asyncio.run(instances.forward_add(args.name, args.spec))
        if row["state"] == "stopped":
            console.print(
                line(
                    f"guest {row['guest']} -> {row['host']}: saved "
                    f"({args.name} is stopped; it opens when {args.name} starts)"
                )
            )
            return 0
        active = row["state"] == "active"
        console.print(
            line(
                f"guest {row['guest']} -> {row['host']}: {row['state']}"
                + (f" ({row['reason']})" if row["reason"] and not active else "")
            )
        )
        if active and row["reason"]:  # listening beyond loopback
            err_console.print(line((row["reason"], "bold yellow")), soft_wrap=True)
        return 0 if active else 1
    asyncio.run(instances.forward_remove(args.name, args.spec))
    console.print(
        line(
            f"removed the forward of guest port {args.spec} "
            f"(it stays removed until 'envdeck forward {args.name} add {args.spec}')"
        )
    )
    return 0
