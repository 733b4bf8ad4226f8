"""Forward listeners on the host, without a guest: failed and conflicting listeners stay
isolated, and a connection made while SSH is down is refused, not hung."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

from envdeck.backend.events import ForwardStatus
from envdeck.backend.forwards.manager import ForwardManager


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_a_failed_listener_is_reported_and_the_others_keep_working(tmp_path: Path):
    events: list[ForwardStatus] = []
    manager = ForwardManager("unit", (), events.append, lambda: None, base_dir=tmp_path)
    await manager.start([])
    taken = socket.create_server(("127.0.0.1", 0))
    try:
        failed = await manager.add(f"80:192.0.2.1:{free_port()}")  # not an address of this host
        conflict = await manager.add(f"81:{taken.getsockname()[1]}")
        good_port = free_port()
        good = await manager.add(f"82:{good_port}")
        assert failed["state"] == "failed" and "cannot listen on 192.0.2.1" in failed["reason"]
        assert conflict["state"] == "conflict" and "already in use" in conflict["reason"]
        assert good["state"] == "active" and good["host"] == f"127.0.0.1:{good_port}"
        assert {e.guest: e.state for e in events} == {
            "80": "failed",
            "81": "conflict",
            "82": "active",
        }

        # SSH is down (no connection): a client is closed at once and counted as refused.
        reader, writer = await asyncio.open_connection("127.0.0.1", good_port)
        assert await asyncio.wait_for(reader.read(), 5) == b""
        writer.close()
        await asyncio.sleep(0.05)
        assert manager.forwards["82"].refused == 1 and manager.forwards["82"].connections == 0
    finally:
        taken.close()
        await manager.close()
