"""Benchmark: `envdeck start` of the aarch64 tiny guest (TCG, -M virt) -> ready vs a raw
``qemu-system-aarch64`` booting the same kernel and initramfs until sshd answers.

One run of each. Prints the ratio (goal <= 1.2); asserts nothing about time.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from envdeck.backend.instances import api as instances
from tests.benchmarks.test_bench_boot import breakdown, raw_boot
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
        since, began = events.stat().st_size, time.time()
        t0 = time.monotonic()
        envdeck("start", "a64", check=True)
        ours = time.monotonic() - t0
        where = breakdown(events, since, began, time.time())
        assert list_json()["a64"]["state"] == "ready"
        envdeck("stop", "a64", check=True, timeout=120)
        raw = raw_boot(argv, tmp_path)
        print(
            f"\n[bench boot aarch64] envdeck start->ready {ours:.2f}s; raw "
            f"qemu-system-aarch64->sshd {raw:.2f}s; ratio {ours / raw:.2f} (goal <= 1.2)\n"
            f"[bench boot aarch64] seconds since the CLI was run: {where}"
        )
    finally:
        kill_everything(envdeck_home)
