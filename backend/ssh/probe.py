"""Noticing a booting guest's sshd through QEMU's user network, soon and without a flood.

QEMU's user network (slirp) accepts every host connection at once. Before the guest's network is
up a probe hears nothing (its SYN waits for a retry); once it is up and before sshd listens, the
guest turns a probe away at once; once sshd listens, a probe hears its banner, which a slow guest
(OpenSSH forks and re-executes itself per connection) may take seconds to send. Probes that give
up on a slow banner and start again would never see one, and pile connections onto sshd.
"""

from __future__ import annotations

import asyncio
import enum
import socket
from dataclasses import dataclass


@dataclass(frozen=True)
class Answer:
    """sshd's identification line and the connection it came on, the line left unread: asyncssh
    logs in over that connection (no second TCP connection, no second fork of the guest's sshd)."""

    banner: str
    sock: socket.socket


class NoAnswer(enum.Enum):
    """Why a probe ended without a banner."""

    SILENT = "silent"  # nothing within its time: the guest's network is not up, or sshd is slow
    TURNED_AWAY = "turned away"  # closed without a banner: the guest's network is up


async def answer(port: int, timeout: float = 2.0) -> Answer | NoAnswer:
    """Connect to 127.0.0.1:port and peek at its SSH identification line."""
    loop = asyncio.get_running_loop()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setblocking(False)
    try:
        async with asyncio.timeout(timeout):
            await loop.sock_connect(sock, ("127.0.0.1", port))
            while True:
                await _readable(loop, sock)
                data = sock.recv(256, socket.MSG_PEEK)
                if not data or b"\n" in data or len(data) == 256:
                    break
                await asyncio.sleep(0.01)  # half a line so far
    except BaseException as exc:
        sock.close()
        if isinstance(exc, TimeoutError):
            return NoAnswer.SILENT
        if isinstance(exc, OSError):
            return NoAnswer.TURNED_AWAY
        raise
    if not data.startswith(b"SSH-") or b"\n" not in data:
        sock.close()
        return NoAnswer.TURNED_AWAY
    return Answer(data.split(b"\n", 1)[0].decode(errors="replace").strip(), sock)


async def _readable(loop: asyncio.AbstractEventLoop, sock: socket.socket) -> None:
    ready: asyncio.Future[None] = loop.create_future()

    def readable() -> None:
        if not ready.done():
            ready.set_result(None)

    loop.add_reader(sock.fileno(), readable)
    try:
        await ready
    finally:
        loop.remove_reader(sock.fileno())


@dataclass(frozen=True)
class ProbePace:
    """How probes are paced while nothing has answered yet, and once the guest's network is up."""

    every: float = 0.1  # never two probes closer than this
    early_timeout: float = 1.5  # a probe that hears nothing gives way to a fresh one...
    early_in_flight: int = 16  # ...(so hung ones never hold the pace: above timeout / every)
    early_for: float = 5.0  # then, still nothing: fewer and longer probes
    late_timeout: float = 4.0
    late_in_flight: int = 4
    patient_timeout: float = 30.0  # network up: one probe at a time waits this long for a banner


async def first_answer(port: int, pace: ProbePace = ProbePace()) -> Answer:
    """Wait until 127.0.0.1:port answers with an SSH banner; that answer (its connection open).

    Until anything answers, a new probe every ``pace.every`` (a probe sent before the guest's
    network is up hangs, so one slow probe must not delay the next). Once a probe is turned away
    the network is up: from then on one probe at a time, each waiting patiently for sshd's banner.
    """
    loop = asyncio.get_running_loop()
    pending: set[asyncio.Task[Answer | NoAnswer]] = set()
    patient: asyncio.Task[Answer | NoAnswer] | None = None  # the one probe since the network is up
    found: Answer | None = None
    start = next_probe = loop.time()
    try:
        while found is None:
            now = loop.time()
            if now >= next_probe and _may_probe(pace, pending, patient, now - start):
                next_probe = now + pace.every
                task = asyncio.create_task(answer(port, _timeout(pace, patient, now - start)))
                pending.add(task)
                if patient is not None:
                    patient = task
            if not pending:
                await asyncio.sleep(max(next_probe - loop.time(), 0.01))
                continue
            done, pending = await asyncio.wait(
                pending,
                timeout=max(next_probe - loop.time(), 0.01),
                return_when=asyncio.FIRST_COMPLETED,
            )
            for task in done:
                result = task.result()
                if isinstance(result, Answer):
                    if found is None:
                        found = result
                    else:
                        result.sock.close()
                elif result is NoAnswer.TURNED_AWAY and patient is None:
                    patient = task  # (done: the next probe is the first patient one)
        return found
    finally:
        for task in pending:
            task.cancel()
            task.add_done_callback(_close_late_answer)


def _may_probe(
    pace: ProbePace,
    pending: set[asyncio.Task[Answer | NoAnswer]],
    patient: asyncio.Task[Answer | NoAnswer] | None,
    elapsed: float,
) -> bool:
    if patient is not None:
        return patient.done()
    limit = pace.early_in_flight if elapsed < pace.early_for else pace.late_in_flight
    return len(pending) < limit


def _timeout(
    pace: ProbePace, patient: asyncio.Task[Answer | NoAnswer] | None, elapsed: float
) -> float:
    if patient is not None:
        return pace.patient_timeout
    return pace.early_timeout if elapsed < pace.early_for else pace.late_timeout


def _close_late_answer(task: asyncio.Task[Answer | NoAnswer]) -> None:
    """A probe that answered as it was cancelled: its connection is not needed."""
    if task.cancelled() or task.exception() is not None:
        return
    if isinstance(late := task.result(), Answer):
        late.sock.close()
