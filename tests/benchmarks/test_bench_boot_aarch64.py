"""Benchmark: `envdeck start` of the aarch64 tiny guest (TCG, -M virt) -> ready vs a raw
``qemu-system-aarch64`` booting the same kernel and initramfs until sshd answers.

Both measured in this run, alternating, median of the rounds (one noisy run does not decide it),
with where each start's time went. Prints the ratio (goal <= 1.2); asserts nothing about time.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from envdeck.backend.instances import api as instances
from tests.benchmarks.test_bench_boot import compare_with_raw
from tests.conftest import require_tool
from tests.integration.instance_helpers import envdeck, kill_everything

pytestmark = pytest.mark.benchmark


def test_bench_aarch64_start_to_ready_vs_raw_qemu(envdeck_home: Path, tmp_path: Path):
    require_tool("qemu-system-aarch64", "qemu-img")
    try:
        envdeck("create", "a64", "--arch", "aarch64", check=True, timeout=900)
        envdeck("start", "a64", check=True)  # warm-up: image built, caches hot
        argv = instances.qemu_argv("a64")
        assert argv[0].endswith("qemu-system-aarch64")
        envdeck("stop", "a64", check=True, timeout=120)
        compare_with_raw(envdeck_home, "a64", tmp_path, "boot aarch64", 1.2)
    finally:
        kill_everything(envdeck_home)
