"""Port forwards on the real tiny guest: auto-forward, conflict, manual add/remove, restart."""

from __future__ import annotations

import json
import os
import signal
import socket
import stat
import time
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import require_tool
from tests.integration.instance_helpers import envdeck, kill_everything, wait_for

pytestmark = pytest.mark.integration


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def forwards(name: str) -> dict[str, dict]:
    return {
        row["guest"]: row
        for row in json.loads(envdeck("forwards", name, "--json", check=True).stdout)
    }


def fetch(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=10) as response:
        return response.read().decode()


def start_serving(name: str, port: int, text: str) -> None:
    """Create and start an instance whose guest serves ``text`` over HTTP on ``port``
    (auto-forwarded)."""
    envdeck("create", name, check=True, timeout=900)
    envdeck("start", name, check=True)
    envdeck(
        "exec",
        name,
        "--",
        "sh",
        "-c",
        f"mkdir -p /www && echo {text} > /www/index.html && httpd -p {port} -h /www",
        check=True,
    )
    wait_for(lambda: forwards(name).get(str(port)), timeout=10)


def test_forwards_end_to_end(envdeck_home: Path):
    require_tool("qemu-system-x86_64", "qemu-img")
    web, busy, manual_host = free_port(), free_port(), free_port()
    try:
        envdeck("create", "fwd", check=True, timeout=900)
        envdeck("start", "fwd", check=True)
        # A guest service starts listening: forwarded to the same host port within 2 s.
        envdeck(
            "exec",
            "fwd",
            "--",
            "sh",
            "-c",
            f"mkdir -p /www && echo hello-envdeck > /www/index.html && httpd -p {web} -h /www",
            check=True,
        )
        t0 = time.monotonic()
        row = wait_for(lambda: forwards("fwd").get(str(web)), timeout=10, interval=0.1)
        assert time.monotonic() - t0 < 2.5
        assert (
            row["source"] == "auto"
            and row["state"] == "active"
            and row["host"] == f"127.0.0.1:{web}"
        )
        assert fetch(web).strip() == "hello-envdeck"
        counted = wait_for(
            lambda: (r := forwards("fwd")[str(web)])["bytes_in"] > 0 and r, timeout=5
        )
        assert counted["connections"] == 1 and counted["bytes_out"] > 0

        # Nothing listens beyond 127.0.0.1 unless the user wrote another address.
        with socket.socket() as probe:
            probe.settimeout(1)
            assert probe.connect_ex(("127.0.0.2", web)) != 0
        # A host port already taken: reported as a conflict, the rest keeps working.
        blocker = socket.socket()
        blocker.bind(("127.0.0.1", busy))
        blocker.listen()
        try:
            envdeck(
                "exec",
                "fwd",
                "--",
                "sh",
                "-c",
                f"httpd -f -p {busy} -h /www </dev/null >/dev/null 2>&1 & echo $! > /tmp/busy.pid",
                check=True,
            )
            row = wait_for(lambda: forwards("fwd").get(str(busy)), timeout=10)
            assert row["state"] == "conflict" and "already in use" in row["reason"]
            assert fetch(web).strip() == "hello-envdeck"
        finally:
            blocker.close()
        # Freed: the conflict heals by itself.
        wait_for(lambda: forwards("fwd")[str(busy)]["state"] == "active", timeout=15)

        # The service stops listening: its auto forward goes away.
        envdeck("exec", "fwd", "--", "sh", "-c", "kill $(cat /tmp/busy.pid)", check=True)
        wait_for(lambda: str(busy) not in forwards("fwd"), timeout=10)

        # A manual forward at runtime, kept across a restart.
        added = envdeck("forward", "fwd", "add", f"{web}:{manual_host}", check=True)
        assert "active" in added.stdout
        assert fetch(manual_host).strip() == "hello-envdeck"
        envdeck("restart", "fwd", check=True)
        row = forwards("fwd")[str(web)]
        assert (
            row["source"] == "manual"
            and row["host"] == f"127.0.0.1:{manual_host}"
            and row["state"] == "active"
        )
        envdeck("forward", "fwd", "remove", str(web), check=True)
        assert str(web) not in forwards("fwd")
        assert envdeck("forward", "fwd", "add", "nonsense").returncode == 2
    finally:
        envdeck("stop", "fwd", timeout=120)
        kill_everything(envdeck_home)


def test_ssh_cut_degrades_then_reconnects_and_forwards_survive(envdeck_home: Path):
    """Kill every sshd in the guest: degraded meanwhile, then ready again, forwards working."""
    require_tool("qemu-system-x86_64", "qemu-img")
    web = free_port()
    try:
        start_serving("cut", web, "still-here")
        envdeck("exec", "cut", "--", "killall", "dropbear")  # our own session dies with it
        wait_for(lambda: list_state("cut")["state"] == "degraded", timeout=15, interval=0.2)
        row = wait_for(
            lambda: (r := list_state("cut"))["state"] == "ready" and r, timeout=60, interval=0.5
        )
        assert row["reason"] is None
        assert fetch(web).strip() == "still-here"
    finally:
        envdeck("stop", "cut", timeout=120)
        kill_everything(envdeck_home)


def list_state(name: str) -> dict:
    return {r["name"]: r for r in json.loads(envdeck("list", "--json", check=True).stdout)}[name]


def test_guest_unix_socket_forward(envdeck_home: Path, tmp_path: Path):
    """guestSocket -> hostSocket (relative: in the instance dir, 0600), by socat over SSH."""
    require_tool("qemu-system-x86_64", "qemu-img")
    spec = tmp_path / "sock.yaml"
    spec.write_text(
        "memory: 256MiB\nportForwards:\n"
        "  - guestSocket: /run/echo.sock\n    hostSocket: echo.sock\n"
    )
    host_sock = envdeck_home / "instances" / "sock" / "echo.sock"
    try:
        envdeck("create", "sock", "-f", str(spec), check=True, timeout=900)
        envdeck("start", "sock", check=True)
        envdeck(
            "exec",
            "sock",
            "--",
            "sh",
            "-c",
            "socat UNIX-LISTEN:/run/echo.sock,fork EXEC:cat </dev/null >/dev/null 2>&1 &",
            check=True,
        )
        # (active once the agent's next look at the guest finds the socket: within a second)
        row = wait_for(
            lambda: (r := forwards("sock")["/run/echo.sock"])["state"] == "active" and r, 5
        )
        assert row["host"] == str(host_sock) and row["source"] == "rule"
        assert stat.S_IMODE(host_sock.stat().st_mode) == 0o600

        def echo() -> bytes:
            with socket.socket(socket.AF_UNIX) as client:
                client.settimeout(10)
                client.connect(str(host_sock))
                client.sendall(b"through-the-guest-socket\n")
                client.shutdown(socket.SHUT_WR)
                return client.recv(100)

        assert wait_for(
            lambda: echo() == b"through-the-guest-socket\n" or None, timeout=20, interval=0.5
        )
        counted = wait_for(
            lambda: (r := forwards("sock")["/run/echo.sock"])["bytes_in"] > 0 and r, timeout=5
        )
        assert counted["bytes_out"] >= 25 and counted["connections"] >= 1
    finally:
        envdeck("stop", "sock", timeout=120)
        kill_everything(envdeck_home)
    assert not host_sock.exists()  # the agent removes its socket when the instance stops


def test_guest_paused_then_resumed_reconnects_and_forwards_come_back(
    envdeck_home: Path, monkeypatch: pytest.MonkeyPatch
):
    """Freeze the guest long enough for SSH keepalives to give up (2 s x 3 here), then thaw it:
    degraded meanwhile, ready again after, forwards working. Once with `envdeck pause`/`resume`
    (shown as paused), once frozen behind the agent's back (SIGSTOP to the QEMU we started)."""
    require_tool("qemu-system-x86_64", "qemu-img")
    monkeypatch.setenv("ENVDECK_SSH_KEEPALIVE", "2")
    web = free_port()
    try:
        start_serving("frz", web, "thawed")

        assert "paused" in envdeck("pause", "frz", check=True).stdout
        assert list_state("frz")["state"] == "paused"
        assert envdeck("pause", "frz").returncode != 0  # already paused: a clear refusal
        time.sleep(10)  # keepalives time out meanwhile; the state stays "paused", not "degraded"
        assert list_state("frz")["state"] == "paused"
        envdeck("resume", "frz", check=True)
        wait_for(lambda: list_state("frz")["state"] == "ready", timeout=60, interval=0.5)
        assert fetch(web).strip() == "thawed"
        assert "already running" in envdeck("resume", "frz", check=True).stdout  # (issue #16)

        qemu_pid = list_state("frz")["pid"]
        os.kill(qemu_pid, signal.SIGSTOP)
        try:
            row = wait_for(
                lambda: (r := list_state("frz"))["state"] == "degraded" and r,
                timeout=30,
                interval=0.5,
            )
            assert "reconnecting" in row["reason"]
        finally:
            os.kill(qemu_pid, signal.SIGCONT)
        wait_for(lambda: list_state("frz")["state"] == "ready", timeout=60, interval=0.5)
        assert wait_for(lambda: forwards("frz")[str(web)]["state"] == "active", timeout=10)
        assert fetch(web).strip() == "thawed"
    finally:
        envdeck("stop", "frz", timeout=120)
        kill_everything(envdeck_home)
