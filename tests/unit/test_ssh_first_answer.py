"""How soon the agent's probe notices sshd: QEMU's user network accepts every connection at once,
and one made before the guest's network is up hangs. The probe must keep its pace anyway."""

from __future__ import annotations

import asyncio
import contextlib
import time

from envdeck.backend.ssh.client import first_answer


async def _guest_like_server(answers_after: float) -> tuple[asyncio.Server, int]:
    """127.0.0.1:port that accepts at once; connections made before ``answers_after`` seconds
    never hear a word (as through slirp before the guest's network), later ones get a banner."""
    t0 = time.monotonic()
    held: list[asyncio.StreamWriter] = []

    async def serve(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if time.monotonic() - t0 < answers_after:
            held.append(writer)
            return
        writer.write(b"SSH-2.0-dropbear\r\n")
        await writer.drain()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1]


async def test_sshd_is_seen_soon_after_it_answers_though_earlier_probes_hang():
    answers_after = 1.0
    server, port = await _guest_like_server(answers_after)
    async with server:
        t0 = time.monotonic()
        found = await asyncio.wait_for(first_answer(port), 10)
        took = time.monotonic() - t0
        # the banner is left unread on the connection, for the login that goes over it
        unread = await asyncio.get_running_loop().sock_recv(found.sock, 64)
        found.sock.close()
    assert found.banner == "SSH-2.0-dropbear"
    assert unread == b"SSH-2.0-dropbear\r\n"
    # (with at most 4 probes of 2 s each in flight, this took 2.0 s: the hung ones held it)
    assert took < answers_after + 0.5, f"sshd noticed {took - answers_after:.2f}s late"


async def test_probes_keep_their_pace_while_the_guest_turns_them_away():
    """Once the guest's network is up, a probe before sshd listens ends at once: a new one must
    still wait its turn (a tight loop of connections slows a TCG guest's boot)."""
    probes = 0

    async def turn_away(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal probes
        probes += 1
        writer.close()

    server = await asyncio.start_server(turn_away, "127.0.0.1", 0)
    async with server:
        port = server.sockets[0].getsockname()[1]
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(first_answer(port, every=0.1), 1.0)
    assert 5 <= probes <= 12, f"{probes} probes in 1 s at one every 0.1 s"
