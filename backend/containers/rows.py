"""Docker's container list entries (``GET /containers/json``) -> :class:`ContainerInfo` rows.

Pure functions: no SDK calls, so they are unit-tested on plain dicts.
"""

from __future__ import annotations

from typing import Any

from envdeck.backend.containers.platform import is_emulated
from envdeck.backend.events import ContainerInfo

# Event actions after which a container's row must be re-read; "destroy" removes it. Others
# (exec_*, attach, resize, top, copy, ...) do not change what the list shows.
REFRESH_ACTIONS = frozenset(
    {
        "create",
        "start",
        "restart",
        "stop",
        "die",
        "kill",
        "pause",
        "unpause",
        "rename",
        "update",
        "oom",
        "health_status",
    }
)
REMOVE_ACTION = "destroy"


def event_action(event: dict[str, Any]) -> str:
    """The base action of a docker event: ``"exec_start: sh"`` -> ``"exec_start"``."""
    action = event.get("Action") or event.get("status") or ""
    return action.split(":", 1)[0].strip()


def event_container_id(event: dict[str, Any]) -> str | None:
    """The container id a docker event is about (None for non-container events)."""
    if event.get("Type", "container") != "container":
        return None
    return (event.get("Actor") or {}).get("ID") or event.get("id")


def plan_batch(events: list[dict[str, Any]]) -> tuple[list[str], list[str]]:
    """After a batch of events (oldest first): the ids to re-read, and the ids destroyed.

    An id lands in exactly one list, decided by its last state-relevant event; the order of
    first appearance is kept. Events that change nothing shown are ignored.
    """
    last: dict[str, str] = {}
    for event in events:
        cid, action = event_container_id(event), event_action(event)
        if cid and (action == REMOVE_ACTION or action in REFRESH_ACTIONS):
            last[cid] = action
    refresh = [cid for cid, action in last.items() if action != REMOVE_ACTION]
    removed = [cid for cid, action in last.items() if action == REMOVE_ACTION]
    return refresh, removed


def container_name(attrs: dict[str, Any]) -> str:
    """The primary name, without docker's leading slash (the short id when nameless)."""
    names = attrs.get("Names") or []
    primary = min(names, key=lambda n: n.count("/")) if names else ""
    return primary.lstrip("/") or attrs.get("Id", "")[:12]


def format_port(port: dict[str, Any]) -> str:
    """One published or exposed port as ``docker ps`` prints it: ``127.0.0.1:8080->80/tcp``."""
    proto = port.get("Type", "tcp")
    private = f"{port.get('PrivatePort')}/{proto}"
    public = port.get("PublicPort")
    if not public:
        return private
    ip = port.get("IP") or "0.0.0.0"
    host = f"[{ip}]" if ":" in ip else ip
    return f"{host}:{public}->{private}"


def format_ports(ports: list[dict[str, Any]] | None) -> list[str]:
    """Every port, in docker's order, each once (IPv6 twins of a 0.0.0.0 binding dropped)."""
    result: list[str] = []
    wildcard = {
        (p.get("PublicPort"), p.get("PrivatePort"), p.get("Type"))
        for p in ports or []
        if p.get("IP") == "0.0.0.0"
    }
    for port in ports or []:
        key = (port.get("PublicPort"), port.get("PrivatePort"), port.get("Type"))
        if port.get("IP") == "::" and key in wildcard:
            continue
        text = format_port(port)
        if text not in result:
            result.append(text)
    return result


def to_info(
    endpoint: str, attrs: dict[str, Any], platform: str | None, native_arch: str | None
) -> ContainerInfo:
    """The event row for one list entry."""
    return ContainerInfo(
        endpoint=endpoint,
        id=attrs["Id"],
        name=container_name(attrs),
        image=attrs.get("Image") or attrs.get("ImageID") or "",
        state=attrs.get("State") or "unknown",
        status=attrs.get("Status") or "",
        created=float(attrs["Created"]) if attrs.get("Created") else None,
        ports=format_ports(attrs.get("Ports")),
        platform=platform,
        emulated=is_emulated(platform, native_arch),
    )


def info_json(info: ContainerInfo) -> dict[str, Any]:
    """The CLI's JSON form of a row (``envdeck containers --json``)."""
    return {
        "endpoint": info.endpoint,
        "id": info.id,
        "name": info.name,
        "image": info.image,
        "state": info.state,
        "status": info.status,
        "created": info.created,
        "ports": info.ports,
        "platform": info.platform,
        "emulated": info.emulated,
    }
