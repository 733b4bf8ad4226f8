"""Benchmark: `envdeck start` of the aarch64 tiny guest (TCG, -M virt) -> ready vs a raw
``qemu-system-aarch64`` booting the same kernel and initramfs until sshd answers.

Both measured in this run, alternating, median of the rounds (one noisy run does not decide it),
with where each start's time went. Prints the ratio (goal <= 1.2); asserts nothing about time.
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path

import pytest

from envdeck.backend.instances import api as instances
from tests.benchmarks.test_bench_boot import ROUNDS, breakdown, raw_boot
from tests.conftest import require_tool
from tests.integration.instance_helpers import envdeck, kill_everything, list_json

pytestmark = pytest.mark.benchmark


def test_bench_aarch64_start_to_ready_vs_raw_qemu(envdeck_home: Path, tmp_path: Path):
    require_tool("qemu-system-aarch64", "qemu-img")
    try:
        envdeck("create", "a64", "--arch", "aarch64", check=True, timeout=900)
        envdeck("start", "a64", check=True)  # warm-up: image built, caches hot
        argv = instances.qemu_argv("a64")
        assert argv[0].endswith("qemu-system-aarch64")
        envdeck("stop", "a64", check=True, timeout=120)
        events = envdeck_home / "instances" / "a64" / "events.jsonl"
        ours, raws, where = [], [], []
        for _ in range(ROUNDS):
            since, began = events.stat().st_size, time.time()
            t0 = time.monotonic()
            envdeck("start", "a64", check=True)
            ours.append(time.monotonic() - t0)
            where.append(breakdown(events, since, began, time.time()))
            assert list_json()["a64"]["state"] == "ready"
            envdeck("stop", "a64", check=True, timeout=120)
            raws.append(raw_boot(argv, tmp_path))
        ratio = statistics.median(ours) / statistics.median(raws)
        print(
            f"\n[bench boot aarch64] envdeck start->ready median {statistics.median(ours):.2f}s "
            f"(runs {', '.join(f'{x:.2f}' for x in ours)}); raw qemu-system-aarch64->sshd "
            f"median {statistics.median(raws):.2f}s (runs {', '.join(f'{x:.2f}' for x in raws)}); "
            f"ratio {ratio:.2f} (goal <= 1.2)"
        )
        for n, marks in enumerate(where, 1):
            print(f"[bench boot aarch64] run {n}, seconds since the CLI was run: {marks}")
    finally:
        kill_everything(envdeck_home)
