"""Issue #16's traps and ghosts on the real tiny guest, driven through the CLI as a person would:
a paused instance answers at once, removed forwards stay removed, a stopped instance's forwards
are its saved rules, a deleted running instance leaves the feed, agent.log stays small."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import stat
import subprocess
import time
from pathlib import Path

import pytest

from envdeck.backend.agent.client import AgentClient
from envdeck.backend.events import AgentMessage, InstanceStatus
from envdeck.backend.instances import api as instances
from envdeck.backend.instances.source import InstancesSource
from envdeck.backend.sources import Hub
from envdeck.backend.store import InstanceDir
from tests.conftest import require_tool
from tests.integration.instance_helpers import CLI, envdeck, kill_everything, list_json, wait_for

pytestmark = pytest.mark.integration

PAUSED = "is paused — `p` / `envdeck resume"


def forwards(name: str) -> dict[str, dict]:
    return {
        row["guest"]: row
        for row in json.loads(envdeck("forwards", name, "--json", check=True).stdout)
    }


def quick(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    """A CLI call that must answer within 10 s (a hang fails the test instead of the run)."""
    return subprocess.run([*CLI, *args], input=stdin, capture_output=True, text=True, timeout=10)


def test_a_paused_instance_answers_at_once(envdeck_home: Path):
    require_tool("qemu-system-x86_64", "qemu-img", "ssh")
    try:
        envdeck("create", "dev", check=True, timeout=900)
        envdeck("start", "dev", check=True)
        envdeck("pause", "dev", check=True)
        for args in (("exec", "dev", "--", "true"), ("shell", "dev"), ("start", "dev")):
            result = quick(*args, stdin="true\n")
            assert result.returncode == 1, (args, result)
            assert f"dev {PAUSED} dev`" in result.stderr, (args, result.stderr)
            assert "Traceback" not in result.stderr
        # Forwards are the agent's: they are listed and edited while the guest is frozen.
        assert quick("forward", "dev", "add", "7000:17000").returncode == 0
        assert "7000" in forwards("dev")
        assert "resumed" in quick("resume", "dev").stdout
        assert quick("exec", "dev", "--", "true").returncode == 0
        again = quick("resume", "dev")
        assert (again.returncode, again.stdout.strip()) == (0, "dev: already running (ready)")
        # A restart of a paused instance resumes it on the way (its stop powers it down).
        envdeck("pause", "dev", check=True)
        stopped = envdeck("stop", "dev", check=True, timeout=120)
        assert "stopped by powerdown" in stopped.stdout, stopped.stdout
        assert list_json()["dev"]["ssh_port"] is None
    finally:
        envdeck("stop", "dev", timeout=120)
        kill_everything(envdeck_home)


def _serve(name: str, port: int) -> None:
    envdeck(
        "exec",
        name,
        "--",
        "sh",
        "-c",
        f"mkdir -p /www && echo hi > /www/index.html && httpd -p {port} -h /www",
        check=True,
    )


def test_removed_forwards_stay_removed_and_stopped_ones_are_the_saved_rules(envdeck_home: Path):
    require_tool("qemu-system-x86_64", "qemu-img")
    try:
        envdeck("create", "fw", check=True, timeout=900)
        envdeck("start", "fw", check=True)
        _serve("fw", 9090)
        wait_for(lambda: forwards("fw").get("9090"), timeout=10)
        removed = envdeck("forward", "fw", "remove", "9090", check=True)
        # A manual 80:18080 over a guest that listens on 80: removed, no auto 127.0.0.1:80.
        _serve("fw", 80)
        wait_for(lambda: forwards("fw").get("80"), timeout=10)
        envdeck("forward", "fw", "remove", "80", check=True)
        envdeck("forward", "fw", "add", "80:18080", check=True)
        envdeck("forward", "fw", "remove", "80", check=True)
        time.sleep(4)  # the guest is polled every second
        assert "9090" not in forwards("fw") and "80" not in forwards("fw")
        assert "stays removed" in removed.stdout

        envdeck("stop", "fw", check=True, timeout=120)
        assert forwards("fw") == {}
        saved = envdeck("forward", "fw", "add", "7070:17070", check=True)
        assert "saved" in saved.stdout, saved.stdout
        row = forwards("fw")["7070"]
        assert (row["host"], row["source"], row["state"]) == (
            "127.0.0.1:17070",
            "manual",
            "stopped",
        )
        listed = envdeck("forwards", "fw", check=True)
        assert "7070" in listed.stdout and "not running" not in listed.stdout + listed.stderr
        envdeck("forward", "fw", "add", "9090", check=True)  # added again: no longer removed

        envdeck("start", "fw", check=True)
        assert forwards("fw")["7070"]["state"] == "active"
        _serve("fw", 80)
        time.sleep(3)
        assert "80" not in forwards("fw")  # still removed after the restart
        assert forwards("fw")["9090"]["source"] == "manual"
    finally:
        envdeck("stop", "fw", timeout=120)
        kill_everything(envdeck_home)


def test_guest_socket_missing_in_the_guest_is_a_failed_forward(envdeck_home: Path, tmp_path):
    require_tool("qemu-system-x86_64", "qemu-img")
    yaml = tmp_path / "sock.yaml"
    yaml.write_text(
        "template: tiny\nportForwards:\n"
        "  - guestSocket: /var/run/docker.sock\n    hostSocket: docker.sock\n"
    )
    try:
        envdeck("create", "sock", "-f", str(yaml), check=True, timeout=900)
        envdeck("start", "sock", check=True)
        row = wait_for(
            lambda: (r := forwards("sock")["/var/run/docker.sock"])["state"] == "failed" and r,
            timeout=10,
        )
        assert row["reason"] == "no socket at /var/run/docker.sock in the guest"
        assert not (InstanceDir.of("sock").root / "docker.sock").exists()
        # The socket appears in the guest: the forward opens.
        envdeck(
            "exec",
            "sock",
            "--",
            "sh",
            "-c",
            "mkdir -p /var/run && (socat UNIX-LISTEN:/var/run/docker.sock,fork EXEC:cat "
            "</dev/null >/dev/null 2>&1 &)",
            check=True,
        )
        wait_for(lambda: forwards("sock")["/var/run/docker.sock"]["state"] == "active", 10)
    finally:
        envdeck("stop", "sock", timeout=120)
        kill_everything(envdeck_home)


def test_deleting_a_running_instance_leaves_the_feed(envdeck_home: Path):
    require_tool("qemu-system-x86_64", "qemu-img")
    envdeck("create", "gone", check=True, timeout=900)

    async def scenario() -> list[InstanceStatus]:
        source = InstancesSource(rescan_s=2.0)
        hub = Hub([source])
        seen: list[InstanceStatus] = []

        async def consume() -> None:
            async for event in hub.subscribe():
                if isinstance(event, InstanceStatus) and event.instance == "gone":
                    seen.append(event)
                    if event.state == "deleted":
                        return

        consumer = asyncio.create_task(consume())
        await asyncio.sleep(0.1)
        await hub.start()
        await instances.start("gone")
        source.poke()
        while not any(s.state == "ready" for s in seen):
            await asyncio.sleep(0.1)
        await instances.delete("gone", force=True)
        source.poke()  # what the dashboard does after its own action (Ctrl-R does the same)
        await asyncio.wait_for(consumer, 10)
        await hub.stop()
        return seen

    try:
        seen = asyncio.run(asyncio.wait_for(scenario(), 300))
    finally:
        kill_everything(envdeck_home)
    assert seen[-1].state == "deleted"
    stopped = [s for s in seen if s.state == "stopped"]
    assert stopped and all(s.ssh_port is None for s in stopped), seen  # (the agent's last word)


def test_agent_log_is_private_and_quiet(envdeck_home: Path):
    require_tool("qemu-system-x86_64", "qemu-img")
    try:
        envdeck("create", "quiet", check=True, timeout=900)
        envdeck("start", "quiet", check=True)
        log = InstanceDir.of("quiet").agent_log
        before = log.stat().st_size
        time.sleep(5)  # the guest's listeners are polled every second meanwhile
        grown = log.read_text()[before:]
        assert stat.S_IMODE(log.stat().st_mode) == 0o600
        assert "asyncssh" not in grown and len(grown.splitlines()) <= 2, grown
    finally:
        envdeck("stop", "quiet", timeout=120)
        kill_everything(envdeck_home)


def test_asyncssh_fallback_warning_is_taken_back_once_the_master_runs(
    envdeck_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """The agent's first OpenSSH master fails (an `ssh` ahead on PATH refuses once, then runs
    the real one): the warning about asyncssh is followed by an info once the master is up, so
    the instance's last message (what the dashboard shows) is no longer the warning."""
    require_tool("qemu-system-x86_64", "qemu-img", "ssh")
    real_ssh = shutil.which("ssh")
    refused = tmp_path / "refused-once"
    wrapper = tmp_path / "bin" / "ssh"
    wrapper.parent.mkdir()
    wrapper.write_text(
        f'#!/bin/sh\nif [ ! -e {refused} ]; then : > {refused}; echo "refused once" >&2; '
        f'exit 255; fi\nexec {real_ssh} "$@"\n'
    )
    wrapper.chmod(0o755)
    monkeypatch.setenv("PATH", f"{wrapper.parent}:{os.environ['PATH']}")

    async def messages() -> list[AgentMessage]:
        client = await AgentClient.connect(InstanceDir.of("mux").agent_sock, timeout=5)
        said: list[AgentMessage] = []
        try:
            await client.subscribe(backlog=0)  # the recent messages come first, at once
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(1.0):
                    async for event in client.events():
                        if isinstance(event, AgentMessage):
                            said.append(event)
        finally:
            await client.close()
        return said

    try:
        envdeck("create", "mux", check=True, timeout=900)
        envdeck("start", "mux", check=True)
        said = wait_for(
            lambda: (m := asyncio.run(messages())) and "OpenSSH master again" in m[-1].text and m,
            timeout=20,
        )
        texts = [m.text for m in said]
        assert any("forwards run over asyncssh (slower)" in t for t in texts), texts
        assert refused.exists()
    finally:
        envdeck("stop", "mux", timeout=120)
        kill_everything(envdeck_home)
