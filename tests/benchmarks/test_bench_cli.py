"""CLI start-up against bare Python (and ``ps -e`` / ``docker ps -a``), measured side by side in
one run: medians of interleaved runs, wall time and CPU time (user + system of the child: on a
busy machine the steadier of the two). Prints ratios; never asserts a time.

Goals from issue 14: ``list --json`` (one stopped instance) <= 3x ``python -c pass``;
``ps --json`` <= 4x; ``binfmt`` and ``--help`` start as lightly; ``containers`` is shown against
``docker ps -a`` (it loads the Docker SDK to ask dockerd).
"""

from __future__ import annotations

import os
import resource
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.benchmark

RUNS = 15
CLI = [sys.executable, "-m", "envdeck.backend.cli.main"]


def child_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def medians(commands: dict[str, list[str]], env: dict[str, str]) -> dict[str, tuple[float, float]]:
    """Median wall and CPU seconds of each command, the commands taking turns run after run."""
    times: dict[str, list[tuple[float, float]]] = {name: [] for name in commands}
    for _ in range(RUNS):
        for name, argv in commands.items():
            cpu, started = child_cpu(), time.perf_counter()
            subprocess.run(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            times[name].append((time.perf_counter() - started, child_cpu() - cpu))
    return {
        name: (statistics.median(w for w, _ in pairs), statistics.median(c for _, c in pairs))
        for name, pairs in times.items()
    }


def test_cli_startup_against_bare_python(envdeck_home: Path) -> None:
    env = dict(os.environ)
    subprocess.run([*CLI, "create", "bench"], env=env, check=True, capture_output=True)
    commands = {
        "python -c pass": [sys.executable, "-c", "pass"],
        "envdeck list --json": [*CLI, "list", "--json"],
        "envdeck ps --json": [*CLI, "ps", "--json"],
        "envdeck binfmt --json": [*CLI, "binfmt", "--json"],
        "envdeck --help": [*CLI, "--help"],
        "ps -e": ["ps", "-e"],
    }
    if shutil.which("docker"):
        commands["envdeck containers --json"] = [*CLI, "containers", "--json"]
        commands["docker ps -a"] = ["docker", "ps", "-a"]
    result = medians(commands, env)
    bare_wall, bare_cpu = result["python -c pass"]
    goals = {"envdeck list --json": 3.0, "envdeck ps --json": 4.0}
    for name, (wall, cpu) in result.items():
        goal = f"  (goal <= {goals[name]:.0f}x)" if name in goals else ""
        print(
            f"{name:<27} wall {wall * 1000:6.1f} ms {wall / bare_wall:5.2f}x, "
            f"cpu {cpu * 1000:6.1f} ms {cpu / bare_cpu:5.2f}x bare Python{goal}"
        )
