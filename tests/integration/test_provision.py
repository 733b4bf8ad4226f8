"""Provision scripts on the real tiny guest: output in the boot log, a failure degrades."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import require_tool
from tests.integration.instance_helpers import envdeck, kill_everything, list_json

pytestmark = pytest.mark.integration

SPEC = """\
memory: 256MiB
provision:
  - mode: system
    script: |
      echo hello-provision
      echo provisioned > /etc/provisioned
  - mode: system
    script: |
      echo about-to-fail
      exit 7
"""


def test_provision_streams_output_and_failure_degrades(envdeck_home: Path, tmp_path: Path):
    require_tool("qemu-system-x86_64", "qemu-img")
    spec = tmp_path / "prov.yaml"
    spec.write_text(SPEC)
    try:
        envdeck("create", "prov", "-f", str(spec), check=True, timeout=900)
        started = envdeck("start", "prov")
        assert started.returncode == 1
        assert "provision script 2 failed with exit status 7" in started.stdout + started.stderr
        row = list_json()["prov"]
        assert row["state"] == "degraded" and "exit status 7" in row["reason"]
        logs = envdeck("logs", "prov", check=True).stdout
        assert "[provision 1] hello-provision" in logs and "[provision 2] about-to-fail" in logs
        # The first script's work is there; the instance stays usable for debugging.
        out = envdeck("exec", "prov", "--", "cat", "/etc/provisioned", check=True).stdout
        assert out.strip() == "provisioned"
    finally:
        envdeck("stop", "prov", timeout=120)
        kill_everything(envdeck_home)
