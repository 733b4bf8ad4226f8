"""Helpers for integration tests that drive instances through the real CLI."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path

from envdeck.backend.pidrecord import PidRecord

CLI = [sys.executable, "-m", "envdeck.backend.cli.main"]


def envdeck(
    *args: str, timeout: float = 300, check: bool = False, env: Mapping[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run the envdeck CLI as a user would (``env``: variables set on top of the test's own);
    return the finished process."""
    result = subprocess.run(
        [*CLI, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
    )
    if check and result.returncode != 0:
        raise AssertionError(
            f"envdeck {' '.join(args)} -> {result.returncode}\n{result.stdout}\n{result.stderr}"
        )
    return result


def list_json() -> dict[str, dict]:
    """`envdeck list --json` keyed by name."""
    return {row["name"]: row for row in json.loads(envdeck("list", "--json", check=True).stdout)}


def wait_for(predicate, timeout: float, interval: float = 0.1):
    """Poll ``predicate`` until it returns a truthy value; return it, or fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout}s")


def kill_everything(home: Path) -> None:
    """Kill any agent and QEMU recorded under ``home`` (only processes these tests started)."""
    for pid_file in [
        *home.glob("instances/*/agent.pid"),
        *home.glob("instances/*/qemu.pid"),
        *home.glob("instances/*/ssh-master.pid"),
    ]:
        record = PidRecord.load(pid_file)
        if record and record.alive():
            with contextlib.suppress(ProcessLookupError):
                os.kill(record.pid, signal.SIGKILL)
