"""How soon the agent's probe notices sshd: QEMU's user network accepts every connection at once,
and one made before the guest's network is up hangs. The probe must keep its pace anyway."""

from __future__ import annotations

import asyncio
import contextlib
import time

from envdeck.backend.ssh.probe import ProbePace, first_answer


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
            await asyncio.wait_for(first_answer(port, ProbePace(every=0.1)), 1.0)
    assert 5 <= probes <= 12, f"{probes} probes in 1 s at one every 0.1 s"


async def test_a_slow_banner_is_waited_for_by_one_probe_not_given_up_on():
    """A Debian guest's sshd (forked and re-executed per connection, under TCG) may take seconds
    to send its banner. Probes that gave up after 1.5 s and started again never saw one, and piled
    connections onto sshd until the guest logged SYN flooding on port 22."""
    listens_after, banner_after = 0.5, 2.5
    t0 = time.monotonic()
    connections = 0

    async def slow_sshd(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        if time.monotonic() - t0 < listens_after:
            writer.close()  # the guest's network is up, sshd not yet listening
            return
        connections += 1
        await asyncio.sleep(banner_after)
        writer.write(b"SSH-2.0-OpenSSH_9.2p1\r\n")
        with contextlib.suppress(ConnectionError):
            await writer.drain()

    server = await asyncio.start_server(slow_sshd, "127.0.0.1", 0)
    async with server:
        port = server.sockets[0].getsockname()[1]
        found = await asyncio.wait_for(first_answer(port), 10)
        took = time.monotonic() - t0
        found.sock.close()
    assert found.banner == "SSH-2.0-OpenSSH_9.2p1"
    assert took < listens_after + banner_after + 0.5
    assert connections == 1, f"{connections} connections reached sshd while it was slow to answer"
