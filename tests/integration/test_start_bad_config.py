"""`envdeck start` of an instance whose file was broken after create: the CLI checks the file
while the agent it spawned starts; both stop at the error and nothing is launched."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import require_tool
from tests.integration.instance_helpers import envdeck, kill_everything, wait_for

pytestmark = pytest.mark.integration


def test_start_with_a_broken_instance_file_says_where_and_launches_nothing(envdeck_home: Path):
    require_tool("qemu-system-x86_64", "qemu-img", "apt-get", "dpkg-deb")
    try:
        envdeck("create", "bad", check=True, timeout=900)
        inst = envdeck_home / "instances" / "bad"
        state_before = json.loads((inst / "state.json").read_text())
        config = inst / "instance.yaml"
        config.write_text(config.read_text().replace("cpus: 1", "cpus: many"))
        line = next(
            n for n, text in enumerate(config.read_text().splitlines(), 1) if "many" in text
        )

        result = envdeck("start", "bad", timeout=60)

        assert result.returncode == 2, result.stderr
        assert f"instance.yaml:{line}:" in result.stderr
        assert "Traceback" not in result.stderr
        log = inst / "agent.log"  # the agent it spawned says why it stops, then is gone
        wait_for(lambda: "not started" in log.read_text(), timeout=30)
        wait_for(lambda: not (inst / "agent.pid").exists(), timeout=10)
        assert f"instance.yaml:{line}:" in log.read_text()
        assert "Traceback" not in log.read_text()
        assert not (inst / "qemu.pid").exists()
        assert json.loads((inst / "state.json").read_text()) == state_before
    finally:
        kill_everything(envdeck_home)
