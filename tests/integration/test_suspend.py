"""Suspend to disk and resume, on the real tiny guest (TCG), through the CLI as a user runs it.

A guest with a file in its RAM-backed root and an HTTP service is suspended: the instance reads
``suspended``, the state file is owner-only in its own directory. ``start`` resumes it (the
stages say so): the file and the service are still there, the auto forward answers again and
the guest clock is the host's. A state from another QEMU, a changed config or another instance
is refused with the reason and the instance boots from scratch.
"""

from __future__ import annotations

import json
import shutil
import socket
import stat
import time
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import require_tool
from tests.integration.instance_helpers import envdeck, kill_everything, list_json, wait_for

pytestmark = pytest.mark.integration


@pytest.fixture
def home(envdeck_home: Path):
    require_tool("qemu-system-x86_64", "qemu-img")
    yield envdeck_home
    kill_everything(envdeck_home)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def guest(name: str, command: str) -> str:
    return envdeck("exec", name, "--", "sh", "-c", command, check=True).stdout


def fetch(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=10) as response:
        return response.read().decode()


def forwarded(name: str, port: int) -> bool:
    rows = json.loads(envdeck("forwards", name, "--json", check=True).stdout)
    return any(row["guest"] == str(port) and row["state"] == "active" for row in rows)


def suspend(name: str) -> str:
    said = envdeck("suspend", name, check=True, timeout=120).stdout
    assert list_json()[name]["state"] == "suspended"
    return said


def test_suspend_and_resume_keep_the_guest_as_it_was(home: Path):
    web = free_port()
    envdeck("create", "sus", check=True, timeout=900)
    envdeck("start", "sus", check=True)
    guest(
        "sus",
        f"echo kept > /root/mark && mkdir -p /www && echo hi > /www/index.html "
        f"&& httpd -p {web} -h /www",
    )
    wait_for(lambda: forwarded("sus", web), timeout=15)

    said = suspend("sus")
    assert "suspended" in said and "envdeck start sus" in said
    state = home / "instances" / "sus" / "suspend.state"
    assert stat.S_IMODE(state.stat().st_mode) == 0o600 and state.stat().st_size > 1 << 20
    assert json.loads(state.with_name("suspend.json").read_text())["instance"] == "sus"
    assert list_json()["sus"]["pid"] is None

    time.sleep(3)  # the guest's clock stands still meanwhile
    started = envdeck("start", "sus", check=True)
    assert "resumed" in started.stderr, started.stderr  # the stages say so
    assert list_json()["sus"]["state"] == "ready"
    assert guest("sus", "cat /root/mark").strip() == "kept"
    assert abs(int(guest("sus", "date +%s")) - time.time()) < 3
    wait_for(lambda: forwarded("sus", web), timeout=15)
    assert fetch(web).strip() == "hi"
    assert not state.exists()  # used once

    # Resumed again later, it is the new state that counts (the old one is gone).
    guest("sus", "echo second > /root/mark")
    suspend("sus")
    envdeck("start", "sus", check=True)
    assert guest("sus", "cat /root/mark").strip() == "second"

    # stop on a suspended instance discards the saved guest: the next start boots.
    suspend("sus")
    stopped = envdeck("stop", "sus", check=True)
    assert "discarded" in stopped.stdout and not state.exists()
    assert list_json()["sus"]["state"] == "stopped"
    booted = envdeck("start", "sus", check=True)
    assert "resumed" not in booted.stderr
    assert guest("sus", "cat /root/mark 2>/dev/null || echo gone").strip() == "gone"
    envdeck("stop", "sus", check=True, timeout=120)


def refused_then_booted(name: str) -> str:
    """Start a suspended instance whose state must be refused: the reason, then a cold boot."""
    started = envdeck("start", name, check=True)
    said = " ".join(started.stderr.split())  # (rich wraps lines when not at a terminal)
    assert "saved state is refused" in said, said
    assert list_json()[name]["state"] == "ready"
    assert guest(name, "cat /root/mark 2>/dev/null || echo gone").strip() == "gone"
    return said


def test_a_state_from_another_qemu_a_changed_config_or_another_instance_is_refused(home: Path):
    envdeck("create", "one", check=True, timeout=900)
    envdeck("start", "one", check=True)
    guest("one", "echo kept > /root/mark")
    suspend("one")
    meta = home / "instances" / "one" / "suspend.json"
    data = json.loads(meta.read_text())
    meta.write_text(json.dumps({**data, "qemu_version": "6.2.0 (another build)"}))
    said = refused_then_booted("one")
    assert "QEMU 6.2.0 (another build)" in said

    guest("one", "echo kept > /root/mark")
    suspend("one")
    config = home / "instances" / "one" / "instance.yaml"
    config.write_text(config.read_text().replace("cpus: 1", "cpus: 2"))
    said = refused_then_booted("one")
    assert "machine changed" in said
    envdeck("stop", "one", check=True, timeout=120)

    # Another instance's state, copied into this one's directory, is not loaded.
    envdeck("create", "two", check=True, timeout=900)
    envdeck("start", "one", check=True)
    guest("one", "echo kept > /root/mark")
    suspend("one")
    for part in ("suspend.state", "suspend.json"):
        shutil.copy2(home / "instances" / "one" / part, home / "instances" / "two" / part)
    said = refused_then_booted("two")
    assert "saved by instance 'one'" in said
    envdeck("stop", "two", check=True, timeout=120)
    envdeck("stop", "one", check=True)  # discards one's state
