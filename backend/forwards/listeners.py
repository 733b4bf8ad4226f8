"""Which TCP ports a guest listens on, from its /proc/net/tcp and tcp6 (pure parsing)."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

LISTEN = "0A"

#: what the agent runs in the guest (busybox sh) to read both tables at once
READ_TABLES = "cat /proc/net/tcp /proc/net/tcp6 2>/dev/null"


@dataclass(frozen=True)
class Listener:
    """A listening socket in the guest."""

    ip: str
    port: int

    @property
    def loopback_only(self) -> bool:
        """Bound to 127.0.0.0/8 or ::1 (reachable through a forward all the same)."""
        return ipaddress.ip_address(self.ip).is_loopback


def _decode_ip(hex_ip: str) -> str:
    raw = bytes.fromhex(hex_ip)
    if len(raw) == 4:
        return str(ipaddress.IPv4Address(raw[::-1]))
    # IPv6: four 32-bit words, each in host (little-endian) order
    words = b"".join(raw[i : i + 4][::-1] for i in range(0, 16, 4))
    address = ipaddress.IPv6Address(words)
    return str(address.ipv4_mapped or address)


def parse_listeners(text: str) -> set[Listener]:
    """Listening TCP sockets in /proc/net/tcp{,6} text (header lines and junk are skipped)."""
    found: set[Listener] = set()
    for line in text.splitlines():
        fields = line.split()
        if len(fields) < 4 or fields[3] != LISTEN or ":" not in fields[1]:
            continue
        hex_ip, hex_port = fields[1].rsplit(":", 1)
        try:
            found.add(Listener(_decode_ip(hex_ip), int(hex_port, 16)))
        except ValueError:
            continue
    return found
