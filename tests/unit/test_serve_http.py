"""``envdeck serve`` as a user starts it: the printed URL, 403 without the token on pages,
assets and the websocket, the cookie's scope, the bind refusal, and Ctrl-C ending every tab's
dashboard. Also the helpers the browser test (tests/e2e/test_serve_browser.py) starts it with."""

from __future__ import annotations

import base64
import os
import re
import select
import signal
import socket
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import psutil
import pytest

CLI = [sys.executable, "-m", "envdeck.backend.cli.main"]


@dataclass
class Served:
    """A running ``envdeck serve`` and what it printed."""

    proc: subprocess.Popen[str]
    port: int
    url: str
    token: str
    output: list[str] = field(default_factory=list)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def cookie(self) -> str:
        return f"envdeck-serve-{self.port}={self.token}"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def private_env(tmp: Path) -> dict[str, str]:
    return {**os.environ, "ENVDECK_HOME": str(tmp / "home"), "ENVDECK_CONFIG": str(tmp / "cfg")}


@contextmanager
def serving(tmp: Path) -> Iterator[Served]:
    """``envdeck serve`` on a free loopback port; stopped with SIGINT (Ctrl-C) at the end."""
    port = free_port()
    proc = subprocess.Popen(
        [*CLI, "serve", "--port", str(port)],
        env=private_env(tmp),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert proc.stdout is not None
    try:
        ready, _, _ = select.select([proc.stdout], [], [], 60)
        first = proc.stdout.readline() if ready else ""
        found = re.search(r"(http://127\.0\.0\.1:(\d+)/\?token=(\S+))", first)
        assert found, f"no URL printed: {first!r}"
        served = Served(proc, int(found[2]), found[1], found[3], [first])
        assert served.port == port
        drain = threading.Thread(target=served.output.extend, args=(proc.stdout,), daemon=True)
        drain.start()
        yield served
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def status(url: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str]]:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, dict(response.headers)
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers)


def websocket(port: int, headers: dict[str, str]) -> tuple[int, socket.socket]:
    """Open the dashboard's websocket by hand: the handshake's status and the open socket."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    key = base64.b64encode(os.urandom(16)).decode()
    lines = [
        "GET /ws?width=100&height=30 HTTP/1.1",
        f"Host: 127.0.0.1:{port}",
        "Upgrade: websocket",
        "Connection: Upgrade",
        f"Sec-WebSocket-Key: {key}",
        "Sec-WebSocket-Version: 13",
        *(f"{k}: {v}" for k, v in headers.items()),
    ]
    sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
    head = sock.recv(4096).decode(errors="replace")
    return int(head.split()[1]), sock


def test_pages_assets_and_the_websocket_need_the_token(tmp_path: Path) -> None:
    with serving(tmp_path) as served:
        asset = f"{served.base}/static/js/textual.js"
        assert status(f"{served.base}/")[0] == 403
        assert status(f"{served.base}/?token=wrong")[0] == 403
        assert status(asset)[0] == 403
        assert status(f"{served.base}/download/x")[0] == 403
        assert status(asset, {"Cookie": f"envdeck-serve-{served.port}=wrong"})[0] == 403

        code, headers = status(served.url)
        assert code == 200
        cookie = headers["Set-Cookie"]
        assert cookie.startswith(served.cookie + ";")
        assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/" in cookie
        assert headers["Referrer-Policy"] == "no-referrer"  # the URL's token stays here
        assert status(asset, {"Cookie": served.cookie})[0] == 200

        for headers in (
            {},
            {"Cookie": f"envdeck-serve-{served.port}=wrong"},
            {"Cookie": served.cookie, "Origin": "http://127.0.0.1:1"},  # another local page
            {"Cookie": served.cookie, "Origin": "http://evil.example"},
        ):
            code, sock = websocket(served.port, headers)
            sock.close()
            assert code == 403, headers
        assert "token" not in "".join(served.output[1:])  # requests are not logged with it


def test_ctrl_c_stops_the_server_and_the_dashboard_of_each_tab(tmp_path: Path) -> None:
    with serving(tmp_path) as served:
        own = {"Cookie": served.cookie, "Origin": served.base}
        code, tab = websocket(served.port, own)
        assert code == 101
        received = 0
        while received < 10_000:  # the dashboard draws its first screens
            chunk = tab.recv(65536)
            assert chunk, "the tab's websocket closed before the dashboard drew"
            received += len(chunk)
        dashboards = psutil.Process(served.proc.pid).children(recursive=True)
        assert dashboards
        served.proc.send_signal(signal.SIGINT)
        gone, alive = psutil.wait_procs(dashboards, timeout=10)  # told to quit, not left behind
        assert alive == [], alive
        tab.close()  # as the browser answers the server's close
        assert served.proc.wait(10) == 0


def test_a_remote_bind_is_refused_with_exit_2_and_a_busy_port_too(tmp_path: Path) -> None:
    env = private_env(tmp_path)
    refused = subprocess.run(
        [*CLI, "serve", "--host", "0.0.0.0"], env=env, capture_output=True, text=True, timeout=60
    )
    assert refused.returncode == 2 and refused.stdout == ""
    assert "--host 0.0.0.0" in refused.stderr and "--allow-remote" in refused.stderr
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        busy = subprocess.run(
            [*CLI, "serve", "--port", str(port)],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert busy.returncode == 2 and "in use" in busy.stderr and "--port" in busy.stderr
    assert "token" not in busy.stdout


@pytest.mark.parametrize("port", ["0", "70000", "http"])
def test_a_port_out_of_range_is_refused(port: str) -> None:
    done = subprocess.run([*CLI, "serve", "--port", port], capture_output=True, text=True)
    assert done.returncode == 2 and "not a TCP port" in done.stderr
