"""`envdeck start` hands the boot over early: what runs before the agent's spawn, and before the
agent's QEMU launch, imports only what those need (each module costs the boot its import time;
tests/benchmarks/test_bench_boot*.py print where a start's time goes)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path


def loaded_after(imports: str) -> set[str]:
    """The modules a fresh interpreter has loaded after ``import IMPORTS``."""
    code = f"import json, sys; import {imports}; print(json.dumps(sorted(sys.modules)))"
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    return set(json.loads(proc.stdout))


def run_spy(code: str, home: Path) -> set[str]:
    """The modules a spy script (``code``, run with ENVDECK_HOME=home) printed as loaded."""
    proc = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "ENVDECK_HOME": str(home)},
    )
    assert proc.returncode == 0 and proc.stdout, proc.stderr
    return set(json.loads(proc.stdout))


def offending(modules: set[str], banned: tuple[str, ...]) -> list[str]:
    return sorted(m for m in modules if any(m == b or m.startswith(b + ".") for b in banned))


#: what the CLI imports only once the agent is spawned (cmd_start spawns it first)
AFTER_THE_SPAWN = (
    "asyncio",
    "asyncssh",
    "rich",
    "yaml",
    "envdeck.backend.config",
    "envdeck.backend.agent",
    "envdeck.backend.instances.api",
)

#: what the agent imports only once QEMU runs (in a thread while the guest boots, or on use)
AFTER_THE_LAUNCH = (
    "asyncssh",
    "qemu",
    "http.client",
    "envdeck.backend.images.cloud",
    "envdeck.backend.forwards",
    "envdeck.backend.vm.provision",
    "envdeck.backend.agent.readiness",
)


SPAWN_SPY = """
import json, os, sys
from envdeck.backend.instances import launch

def spy(inst):  # what is loaded when `envdeck start` spawns the agent; then stop there
    print(json.dumps(sorted(sys.modules)), flush=True)
    os._exit(0)

launch.spawn_agent = spy
from envdeck.backend.cli.main import main
main(["start", "quick"])
"""


def test_the_cli_spawns_the_agent_before_its_heavy_imports(tmp_path: Path):
    """`envdeck start` as run, up to the agent's spawn (the spawn itself is where it stops)."""
    inst = tmp_path / "instances" / "quick"
    inst.mkdir(parents=True)
    (inst / "instance.yaml").write_text("arch: x86_64\n")
    assert offending(run_spy(SPAWN_SPY, tmp_path), AFTER_THE_SPAWN) == []


def test_the_agent_launches_qemu_before_the_guest_side_imports():
    assert offending(loaded_after("envdeck.backend.agent.daemon"), AFTER_THE_LAUNCH) == []


#: what the agent imports only once QEMU launched from the last start's plan runs
AFTER_THE_EARLY_LAUNCH = (
    "asyncio",
    "yaml",
    "rich",
    *AFTER_THE_LAUNCH,
    "envdeck.backend.config",
    "envdeck.backend.agent.daemon",
    "envdeck.backend.instances.files",
)

LAUNCH_SPY = """
import json, os, subprocess, sys

def spy(*args, **kwargs):  # what is loaded when the agent launches the planned QEMU; stop there
    print(json.dumps(sorted(sys.modules)), flush=True)
    os._exit(0)

subprocess.Popen = spy
from envdeck.backend.agent.entry import main
main(["quick"])
"""


def test_the_agent_launches_the_planned_qemu_before_its_own_imports(tmp_path: Path):
    """The agent as `envdeck start` runs it, with a launch plan, up to QEMU's launch."""
    inst = tmp_path / "instances" / "quick"
    inst.mkdir(parents=True)
    (inst / "instance.yaml").write_text("arch: x86_64\n")
    (inst / "vmlinuz").write_bytes(b"kernel")
    info = (inst / "vmlinuz").stat()
    plan = {
        "argv": ["qemu-system-x86_64", "-initrd", f"{inst}/initrd.img"],
        "port": 2222,
        "boot_files": {str(inst / "vmlinuz"): [info.st_size, info.st_mtime_ns, info.st_ino]},
    }
    (inst / "launch-plan.json").write_text(json.dumps(plan))
    assert offending(run_spy(LAUNCH_SPY, tmp_path), AFTER_THE_EARLY_LAUNCH) == []
