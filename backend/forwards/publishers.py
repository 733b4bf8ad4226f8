"""Which container published a forwarded guest port (Docker Desktop shows the container).

A published port (``docker run -p 8080:80``) is a listener in the guest on its public port
(docker-proxy, or iptables DNAT with the proxy off); envdeck forwards that guest port. The
container behind it is found by the public port in the instance's container rows
(``0.0.0.0:8080->80/tcp``, as ``docker ps`` prints them).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Protocol

#: ``IP:PUBLIC->PRIVATE/PROTO`` (IPv6 addresses in brackets); exposed-only ports have no arrow
_PUBLISHED = re.compile(r"^(?:\[[^\]]*\]|[^:\[\]]*):(\d+)->\d+/(\w+)$")


class HasPorts(Protocol):
    """A container row: its name, state and ``docker ps``-style port strings."""

    name: str
    state: str
    ports: list[str]


def published_ports(ports: Iterable[str]) -> set[tuple[int, str]]:
    """(public port, protocol) of every published port string."""
    found: set[tuple[int, str]] = set()
    for text in ports:
        match = _PUBLISHED.match(text.strip())
        if match:
            found.add((int(match.group(1)), match.group(2)))
    return found


def publishers(guest: str, containers: Iterable[HasPorts]) -> list[str]:
    """Names of the running containers that publish TCP port ``guest`` (a forward's guest
    port; a socket forward's path matches none), sorted."""
    if not guest.isdigit():
        return []
    port = (int(guest), "tcp")
    return sorted(
        c.name for c in containers if c.state == "running" and port in published_ports(c.ports)
    )
