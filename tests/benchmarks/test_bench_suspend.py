"""Benchmark: ``envdeck start`` of a suspended instance -> ready, against a cold boot of the same
instance -> ready, alternating in one run (median of the rounds). Prints the ratio; never
asserts a time.

Goal from issue 14: suspended -> ready <= 0.5x a cold boot.
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path

import pytest

from tests.conftest import require_tool
from tests.integration.instance_helpers import envdeck, kill_everything, list_json

pytestmark = pytest.mark.benchmark

ROUNDS = 3


def timed_start(name: str) -> float:
    t0 = time.monotonic()
    envdeck("start", name, check=True)
    took = time.monotonic() - t0
    assert list_json()[name]["state"] == "ready"
    return took


def test_bench_resume_vs_cold_boot(envdeck_home: Path):
    require_tool("qemu-system-x86_64", "qemu-img")
    try:
        envdeck("create", "bench", check=True, timeout=900)
        envdeck("start", "bench", check=True)  # warm-up (also settles the KVM verdict)
        envdeck("stop", "bench", check=True, timeout=120)
        colds, resumes, saves = [], [], []
        for _ in range(ROUNDS):
            colds.append(timed_start("bench"))
            t0 = time.monotonic()
            envdeck("suspend", "bench", check=True, timeout=120)
            saves.append(time.monotonic() - t0)
            resumes.append(timed_start("bench"))
            envdeck("stop", "bench", check=True, timeout=120)
        cold, resumed = statistics.median(colds), statistics.median(resumes)
        print(
            f"\n[bench suspend] suspended->ready median {resumed:.2f}s "
            f"(runs {', '.join(f'{x:.2f}' for x in resumes)}); cold start->ready median "
            f"{cold:.2f}s (runs {', '.join(f'{x:.2f}' for x in colds)}); ratio "
            f"{resumed / cold:.2f} (goal <= 0.5); suspend itself median "
            f"{statistics.median(saves):.2f}s"
        )
    finally:
        kill_everything(envdeck_home)
