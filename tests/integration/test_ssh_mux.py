"""The forwards' fast path: an OpenSSH master and splice(2), against a real sshd on loopback.

What a forwarded connection must keep: half-close both ways, exact byte counts, a refused
destination counted as refused, and the asyncssh fallback when the master is gone.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import stat
import tempfile
import threading
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import asyncssh
import pytest

from envdeck.backend.forwards.manager import Forward, ForwardManager
from envdeck.backend.ssh.mux import (
    MAX_CONTROL_PATH,
    MuxError,
    MuxRefused,
    OpenSSHMaster,
    control_path_for,
    open_stdio_forward,
)
from tests.local_sshd import LocalSshd, free_port

pytestmark = pytest.mark.integration


class Backend:
    """A loopback TCP server in a thread; ``serve(conn)`` handles each connection."""

    def __init__(self, serve: Callable[[socket.socket], None]) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self._serve = serve
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._run, args=(conn,), daemon=True).start()

    def _run(self, conn: socket.socket) -> None:
        with conn:
            self._serve(conn)

    def close(self) -> None:
        self.sock.close()


def count_until_eof(conn: socket.socket) -> None:
    """Read until the client half-closes, then answer with the count and close."""
    total = 0
    while data := conn.recv(1 << 16):
        total += len(data)
    conn.sendall(f"got {total}".encode())


def talk_first_and_close(conn: socket.socket) -> None:
    """Speak first and close without reading (an EOF-delimited reply)."""
    conn.sendall(b"hello, then EOF")


def client(port: int, payload: bytes, half_close: bool = True) -> bytes:
    """Connect to 127.0.0.1:port, send, optionally half-close, read until EOF."""
    with socket.create_connection(("127.0.0.1", port), timeout=20) as sock:
        sock.sendall(payload)
        if half_close:
            sock.shutdown(socket.SHUT_WR)
        chunks = []
        while data := sock.recv(1 << 16):
            chunks.append(data)
        return b"".join(chunks)


@pytest.fixture
async def master(local_sshd: LocalSshd) -> AsyncIterator[OpenSSHMaster]:
    mux = OpenSSHMaster(local_sshd.openssh_options(), "root@127.0.0.1", local_sshd.dir / "ctl")
    await mux.start()
    try:
        yield mux
    finally:
        await mux.close()


async def manager_with(master: OpenSSHMaster, conn: object = None) -> ForwardManager:
    manager = ForwardManager(
        "mux",
        (),
        lambda _e: None,
        lambda: conn,
        mux=lambda: str(master.control_path) if master.alive else None,
    )
    await manager.start([])
    return manager


async def forward_to(manager: ForwardManager, guest_port: int) -> Forward:
    host_port = free_port()
    await manager.add(f"{guest_port}:{host_port}")
    return manager.forwards[str(guest_port)]


async def test_control_socket_is_private(master: OpenSSHMaster):
    mode = master.control_path.stat().st_mode
    assert stat.S_ISSOCK(mode) and stat.S_IMODE(mode) & 0o077 == 0


async def test_half_close_and_exact_counts(master: OpenSSHMaster):
    backend = Backend(count_until_eof)
    manager = await manager_with(master)  # no asyncssh connection: only the master can carry this
    try:
        fwd = await forward_to(manager, backend.port)
        payload = os.urandom(3 << 20)
        reply = await asyncio.to_thread(client, fwd.host_port, payload)
        assert reply == f"got {len(payload)}".encode()
        assert (fwd.connections, fwd.bytes_out, fwd.bytes_in, fwd.refused) == (
            1,
            len(payload),
            len(reply),
            0,
        )
    finally:
        await manager.close()
        backend.close()


async def test_server_eof_reaches_a_client_that_still_writes(master: OpenSSHMaster):
    backend = Backend(talk_first_and_close)
    manager = await manager_with(master)
    try:
        fwd = await forward_to(manager, backend.port)
        reply = await asyncio.wait_for(asyncio.to_thread(client, fwd.host_port, b"", False), 20)
        assert reply == b"hello, then EOF"
    finally:
        await manager.close()
        backend.close()


async def test_refused_destination_is_counted_not_carried(master: OpenSSHMaster):
    closed_port = free_port()
    with pytest.raises(MuxRefused):
        await open_stdio_forward(str(master.control_path), "127.0.0.1", closed_port)
    manager = await manager_with(master)
    try:
        fwd = await forward_to(manager, closed_port)
        assert await asyncio.to_thread(client, fwd.host_port, b"") == b""
        await asyncio.sleep(0.1)
        assert (fwd.connections, fwd.refused) == (0, 1)
    finally:
        await manager.close()


async def test_master_gone_falls_back_to_asyncssh(master: OpenSSHMaster, local_sshd: LocalSshd):
    backend = Backend(count_until_eof)
    conn = await asyncssh.connect(
        "127.0.0.1",
        local_sshd.port,
        username="root",
        client_keys=[str(local_sshd.client_key)],
        known_hosts=str(local_sshd.known_hosts),
        agent_path=None,
        config=None,
    )
    manager = await manager_with(master, conn)
    try:
        fwd = await forward_to(manager, backend.port)
        assert master.proc is not None
        os.kill(master.proc.pid, signal.SIGKILL)  # the master we started
        await master.proc.wait()
        assert not master.alive
        reply = await asyncio.to_thread(client, fwd.host_port, b"12345")
        assert reply == b"got 5" and fwd.connections == 1
    finally:
        await manager.close()
        conn.close()
        backend.close()


async def test_master_refuses_a_changed_host_key(local_sshd: LocalSshd, tmp_path: Path):
    other = tmp_path / "other_known_hosts"
    other.write_text(
        f"[127.0.0.1]:{local_sshd.port} ssh-ed25519 "
        "AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl\n"
    )
    options = [
        o.replace(str(local_sshd.known_hosts), str(other)) for o in local_sshd.openssh_options()
    ]
    mux = OpenSSHMaster(options, "root@127.0.0.1", tmp_path / "bad.ctl")
    with pytest.raises(MuxError, match="(?i)host key"):
        await mux.start(timeout=15)
    assert not mux.alive and not (tmp_path / "bad.ctl").exists()


def test_long_instance_paths_get_a_private_short_control_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    runtime = Path(tempfile.mkdtemp(prefix="rt", dir="/tmp"))  # short, like /run/user/UID
    try:
        monkeypatch.setenv("XDG_RUNTIME_DIR", str(runtime))
        short = Path("/tmp/i")
        assert control_path_for(short) == short / "ssh.ctl"
        deep = tmp_path / ("x" * 120)
        path = control_path_for(deep)
        assert (
            len(str(path)) <= MAX_CONTROL_PATH and path.parent == runtime / f"envdeck-{os.getuid()}"
        )
        assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
        assert control_path_for(deep) == path and control_path_for(tmp_path / ("y" * 120)) != path
        long_runtime = tmp_path / ("z" * 100)
        monkeypatch.setenv("XDG_RUNTIME_DIR", str(long_runtime))
        with pytest.raises(MuxError, match="private directory"):
            control_path_for(deep)  # the runtime dir does not exist
        long_runtime.mkdir()
        with pytest.raises(MuxError, match="short enough"):
            control_path_for(deep)
    finally:
        shutil.rmtree(runtime)
