"""The agent launches the last start's QEMU before its own imports (backend/agent/plan.py), on
real QEMU: adopted when it is this start's QEMU, killed and replaced when it is not."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import psutil
import pytest

from tests.conftest import require_tool
from tests.integration.instance_helpers import envdeck, kill_everything, list_json, wait_for
from tests.integration.test_instance_lifecycle import qemu_processes

pytestmark = pytest.mark.integration


@pytest.fixture
def home(envdeck_home: Path):
    require_tool("qemu-system-x86_64", "qemu-img", "apt-get", "dpkg-deb", "ssh")
    yield envdeck_home
    kill_everything(envdeck_home)


def _agent_log(inst: Path) -> str:
    return (inst / "agent.log").read_text(errors="replace")


def _qemu_cmdline(home: Path) -> list[str]:
    [proc] = qemu_processes(home)
    return proc.cmdline()


def test_the_second_start_adopts_the_qemu_launched_from_the_plan(home: Path):
    envdeck("create", "plan", check=True, timeout=900)
    inst = home / "instances" / "plan"
    envdeck("start", "plan", check=True)
    plan = json.loads((inst / "launch-plan.json").read_text())
    assert (inst / "launch-plan.json").stat().st_mode & 0o777 == 0o600
    assert "adopted" not in _agent_log(inst)  # (the first start had no plan)
    envdeck("stop", "plan", check=True, timeout=120)

    envdeck("start", "plan", check=True)
    assert "QEMU launched from the last start's plan: adopted" in _agent_log(inst)
    assert _qemu_cmdline(home) == plan["argv"]
    listed = list_json()["plan"]
    assert listed["state"] == "ready" and listed["ssh_port"] == plan["port"]
    started = psutil.Process(listed["pid"]).create_time()
    agent = json.loads((inst / "agent.pid").read_text())
    assert started <= agent["start_time"] + 1.0  # QEMU ran before the agent's imports ended
    out = envdeck("exec", "plan", "--", "cat", "/proc/cmdline", check=True)
    assert "console=" in out.stdout  # the adopted QEMU's guest answers over SSH
    envdeck("stop", "plan", check=True, timeout=120)
    assert qemu_processes(home) == []


def test_a_changed_config_kills_the_planned_qemu_and_launches_the_right_one(home: Path):
    envdeck("create", "plan", "--memory", "256MiB", check=True, timeout=900)
    inst = home / "instances" / "plan"
    envdeck("start", "plan", check=True)
    envdeck("stop", "plan", check=True, timeout=120)
    config = inst / "instance.yaml"
    text = config.read_text()
    assert "memory: 256MiB" in text, text
    config.write_text(text.replace("memory: 256MiB", "memory: 320MiB"))

    envdeck("start", "plan", check=True)
    log = _agent_log(inst)
    assert "the last start's plan is not this start's: its QEMU is killed" in log
    argv = _qemu_cmdline(home)  # one QEMU: the planned one is gone
    assert argv[argv.index("-m") + 1] == "320M"
    assert json.loads((inst / "launch-plan.json").read_text())["argv"] == argv
    assert list_json()["plan"]["state"] == "ready"


def test_a_broken_config_ends_the_planned_qemu_with_the_agent(home: Path):
    envdeck("create", "plan", check=True, timeout=900)
    inst = home / "instances" / "plan"
    envdeck("start", "plan", check=True)
    envdeck("stop", "plan", check=True, timeout=120)
    (inst / "instance.yaml").write_text("cpus: [\n")

    result = envdeck("start", "plan")
    assert result.returncode == 2, result.stdout + result.stderr
    assert "instance.yaml:" in result.stderr
    wait_for(lambda: qemu_processes(home) == [], 15)  # (the agent ends it as it stops)
    wait_for(lambda: not (inst / "qemu.pid").exists(), 5)


def test_a_taken_ssh_port_is_reported_as_without_a_plan(home: Path):
    """The planned QEMU cannot bind ssh.localPort (someone took it): the start says so, as the
    usual launch does, and leaves no QEMU."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    envdeck("create", "plan", check=True, timeout=900)
    inst = home / "instances" / "plan"
    config = inst / "instance.yaml"
    config.write_text(config.read_text() + f"ssh:\n  localPort: {port}\n")
    envdeck("start", "plan", check=True)
    envdeck("stop", "plan", check=True, timeout=120)
    assert json.loads((inst / "launch-plan.json").read_text())["port"] == port

    with socket.socket() as taken:
        taken.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # (past the guest's TIME_WAIT)
        taken.bind(("127.0.0.1", port))
        taken.listen()
        result = envdeck("start", "plan")
    assert result.returncode != 0
    assert f"ssh.localPort {port} is already in use" in " ".join(result.stderr.split())
    wait_for(lambda: qemu_processes(home) == [], 15)
