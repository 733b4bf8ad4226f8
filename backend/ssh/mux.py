"""An OpenSSH ControlMaster held by the agent: the fast data path for TCP port forwards.

asyncssh does the control work (exec, provisioning, listener polls) and remains the fallback
for forwards. Moving bulk data through asyncssh costs Python time per 32 KiB packet, which caps a
forward near half of OpenSSH's rate. So the agent also runs an OpenSSH master to the same guest,
with the same pinned host key and client key, and hands each forwarded connection to it as a
*stdio forward* over its documented mux protocol (OpenSSH's PROTOCOL.mux): one request plus two
pipe descriptors passed with SCM_RIGHTS. The master encrypts in C; the agent moves bytes between
the client socket and the pipes with splice(2) (see ``splice_relay``), so it still counts them.
"""

from __future__ import annotations

import array
import asyncio
import contextlib
import fcntl
import hashlib
import logging
import os
import signal
import socket
import stat
import struct
import tempfile
from dataclasses import dataclass
from pathlib import Path

import psutil

from envdeck.backend.pidrecord import PidRecord, live_record
from envdeck.backend.ssh.client import ssh_path

log = logging.getLogger(__name__)

MUX_MSG_HELLO = 0x00000001
MUX_C_NEW_STDIO_FWD = 0x10000008
MUX_S_PERMISSION_DENIED = 0x80000002
MUX_S_FAILURE = 0x80000003
MUX_S_SESSION_OPENED = 0x80000006
MUX_VERSION = 4
PIPE_BYTES = 1 << 20
F_SETPIPE_SZ = getattr(fcntl, "F_SETPIPE_SZ", 1031)
#: sun_path is 108 bytes; OpenSSH binds "<ControlPath>.<16 random chars>" first, then links it.
MAX_CONTROL_PATH = 107 - 17


class MuxError(Exception):
    """The master could not be used (not running, protocol error); callers fall back."""


class MuxRefused(MuxError):
    """The master is fine but the guest end refused the connection (nothing listens there)."""


@dataclass
class StdioForward:
    """An open stdio forward: write to ``to_guest``, read from ``from_guest``.

    ``control`` is the mux connection that owns the session; close all three with ``close()``.
    """

    control: socket.socket
    to_guest: int
    from_guest: int

    def end_to_guest(self) -> None:
        """EOF toward the guest: close our write end of the pipe (idempotent)."""
        if self.to_guest >= 0:
            fd, self.to_guest = self.to_guest, -1
            os.close(fd)

    def close(self) -> None:
        """Close the pipes and the mux connection (idempotent)."""
        for fd in (self.to_guest, self.from_guest):
            if fd >= 0:
                with contextlib.suppress(OSError):
                    os.close(fd)
        self.to_guest = self.from_guest = -1
        self.control.close()


def _frame(payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + payload


def _string(data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + data


async def _recv_exact(sock: socket.socket, n: int) -> bytes:
    loop = asyncio.get_running_loop()
    data = b""
    while len(data) < n:
        chunk = await loop.sock_recv(sock, n - len(data))
        if not chunk:
            raise MuxError("the OpenSSH master closed the control connection")
        data += chunk
    return data


async def _read_message(sock: socket.socket) -> bytes:
    (length,) = struct.unpack(">I", await _recv_exact(sock, 4))
    if length > 1 << 16:
        raise MuxError(f"mux message of {length} bytes; not an OpenSSH master")
    return await _recv_exact(sock, length)


async def _hello(sock: socket.socket) -> None:
    reply = await _read_message(sock)
    kind, version = struct.unpack(">II", reply[:8])
    if kind != MUX_MSG_HELLO or version != MUX_VERSION:
        raise MuxError(f"unexpected mux hello {kind:#x} version {version}")
    await asyncio.get_running_loop().sock_sendall(
        sock, _frame(struct.pack(">II", MUX_MSG_HELLO, MUX_VERSION))
    )


async def _connect(control_path: str) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.setblocking(False)
    try:
        await asyncio.get_running_loop().sock_connect(sock, control_path)
        await _hello(sock)
    except BaseException:
        sock.close()
        raise
    return sock


def _send_fd(sock: socket.socket, fd: int) -> None:
    """Pass one descriptor the way OpenSSH's mm_send_fd does: one byte plus SCM_RIGHTS."""
    sock.sendmsg([b"\0"], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", [fd]))])


def _pipe() -> tuple[int, int]:
    read_end, write_end = os.pipe2(os.O_CLOEXEC)
    with contextlib.suppress(OSError):  # a larger pipe means fewer wakeups; the default works too
        fcntl.fcntl(write_end, F_SETPIPE_SZ, PIPE_BYTES)
    return read_end, write_end


async def open_stdio_forward(
    control_path: str, host: str, port: int, timeout: float = 10.0
) -> StdioForward:
    """Ask the master at ``control_path`` for a channel to host:port as seen from the guest.

    Raises MuxRefused when the guest end refuses, MuxError when the master is unusable.
    """
    try:
        async with asyncio.timeout(timeout):
            sock = await _connect(control_path)
    except (OSError, TimeoutError) as exc:
        raise MuxError(f"cannot reach the OpenSSH master at {control_path}: {exc}") from exc
    to_guest_r, to_guest_w = _pipe()
    from_guest_r, from_guest_w = _pipe()
    forward = StdioForward(sock, to_guest_w, from_guest_r)
    try:
        request = struct.pack(">II", MUX_C_NEW_STDIO_FWD, 1) + _string(b"") + _string(host.encode())
        request += struct.pack(">I", port)
        async with asyncio.timeout(timeout):
            await asyncio.get_running_loop().sock_sendall(sock, _frame(request))
            sock.setblocking(True)  # two tiny sendmsg calls; the master reads them at once
            try:
                _send_fd(sock, to_guest_r)
                _send_fd(sock, from_guest_w)
            finally:
                sock.setblocking(False)
            reply = await _read_message(sock)
    except (OSError, TimeoutError) as exc:
        forward.close()
        raise MuxError(f"OpenSSH master did not open a stdio forward: {exc}") from exc
    except BaseException:
        forward.close()
        raise
    finally:
        os.close(to_guest_r)  # the master holds its own copies now
        os.close(from_guest_w)
    kind = struct.unpack(">I", reply[:4])[0]
    if kind == MUX_S_SESSION_OPENED:
        return forward
    forward.close()
    reason = _reason(reply) or f"mux reply {kind:#x}"
    if kind in (MUX_S_FAILURE, MUX_S_PERMISSION_DENIED):
        raise MuxRefused(reason)
    raise MuxError(reason)


def _reason(reply: bytes) -> str:
    """The text of a MUX_S_FAILURE / MUX_S_PERMISSION_DENIED reply (type, request id, string)."""
    if len(reply) < 12:
        return ""
    (length,) = struct.unpack(">I", reply[8:12])
    return reply[12 : 12 + length].decode(errors="replace")


def control_path_for(root: Path) -> Path:
    """Where an instance's master listens: ``root/ssh.ctl``, or, when that name is too long for a
    unix socket, a hashed name in a private per-user runtime directory."""
    path = root / "ssh.ctl"
    if len(os.fsencode(path)) <= MAX_CONTROL_PATH:
        return path
    base = (
        Path(os.environ.get("XDG_RUNTIME_DIR") or tempfile.gettempdir()) / f"envdeck-{os.getuid()}"
    )
    try:
        base.mkdir(mode=0o700, exist_ok=True)
        info = base.lstat()
    except OSError as exc:
        raise MuxError(f"cannot make a private directory for the control socket: {exc}") from exc
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid() or info.st_mode & 0o077:
        raise MuxError(f"{base} is not a private directory of this user")
    path = base / (hashlib.sha256(os.fsencode(root)).hexdigest()[:20] + ".ctl")
    if len(os.fsencode(path)) > MAX_CONTROL_PATH:
        raise MuxError(f"no short enough place for a control socket ({path})")
    return path


class OpenSSHMaster:
    """An ``ssh -M -N`` child of the agent, serving stdio forwards on a private control socket."""

    def __init__(
        self,
        ssh_options: list[str],
        destination: str,
        control_path: Path,
        pid_file: Path | None = None,
    ) -> None:
        self.ssh_options = ssh_options
        self.destination = destination
        self.control_path = control_path
        self.pid_file = pid_file  # so a later agent can end the master of one that was killed
        self.proc: asyncio.subprocess.Process | None = None
        self._drain: asyncio.Task[None] | None = None

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.returncode is None

    def argv(self) -> list[str]:
        """The master's command line: no remote command, no stdin, keepalives on."""
        return [
            "ssh",
            *self.ssh_options,
            "-M",
            "-N",
            "-n",
            "-S",
            ssh_path(self.control_path),
            "-o",
            "ControlPersist=no",
            "-o",
            "ConnectTimeout=10",
            "-o",
            "ServerAliveInterval=15",
            "-o",
            "ServerAliveCountMax=3",  # ssh: the first one given wins
            "-o",
            "BatchMode=yes",
            self.destination,
        ]

    async def start(self, timeout: float = 20.0) -> None:
        """Start the master and wait until its control socket answers; MuxError otherwise."""
        await self._end_orphan()
        with contextlib.suppress(FileNotFoundError):
            self.control_path.unlink()  # a stale socket of a dead master
        try:
            self.proc = await asyncio.create_subprocess_exec(
                *self.argv(),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.PIPE,
            )
        except FileNotFoundError as exc:
            raise MuxError("the OpenSSH client (ssh) is not installed") from exc
        if self.pid_file is not None:
            with contextlib.suppress(OSError, psutil.Error):
                PidRecord.of(self.proc.pid, self._marker).save(self.pid_file)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while loop.time() < deadline:
            if self.proc.returncode is not None:
                break
            if self.control_path.exists():
                with contextlib.suppress(OSError, MuxError):
                    (await _connect(str(self.control_path))).close()
                    self._drain = asyncio.create_task(self._log_stderr(self.proc))
                    return
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(0.1):
                    await self.proc.wait()
        detail = await self._stderr()
        await self.close()
        raise MuxError(f"the OpenSSH master did not come up: {detail or 'timed out'}")

    async def wait(self) -> None:
        """Until the master exits."""
        if self.proc is not None:
            await self.proc.wait()

    @property
    def _marker(self) -> str:
        return f"-S {self.control_path} "

    async def _end_orphan(self) -> None:
        """A master left by a killed agent still holds its guest connection: end it (its
        pid record proves it is the one we started: same start time, same control path)."""
        if self.pid_file is None:
            return
        orphan = live_record(self.pid_file)
        if orphan is None or orphan.marker != self._marker:
            return
        log.info("ending the OpenSSH master %d left by a previous agent", orphan.pid)
        with contextlib.suppress(ProcessLookupError):
            os.kill(orphan.pid, signal.SIGTERM)
        for _ in range(50):
            if not orphan.alive():
                return
            await asyncio.sleep(0.1)

    @staticmethod
    async def _log_stderr(proc: asyncio.subprocess.Process) -> None:
        assert proc.stderr is not None
        while line := await proc.stderr.readline():
            log.info("ssh master: %s", line.decode(errors="replace").rstrip())

    async def _stderr(self) -> str:
        if self.proc is None or self.proc.stderr is None or self.proc.returncode is None:
            return ""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(1):
                return (await self.proc.stderr.read()).decode(errors="replace").strip()
        return ""

    async def close(self) -> None:
        """Stop the master (its open forwards end) and remove the control socket."""
        proc, self.proc = self.proc, None
        if self._drain is not None:
            self._drain.cancel()
        if proc is not None and proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.terminate()
            try:
                async with asyncio.timeout(5):
                    await proc.wait()
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                await proc.wait()
        with contextlib.suppress(FileNotFoundError):
            self.control_path.unlink()
        if self.pid_file is not None:
            with contextlib.suppress(FileNotFoundError):
                self.pid_file.unlink()
