"""Benchmark: `envdeck start` -> ready vs a raw QEMU boot of the same guest until sshd answers.

Both measured in this run, alternating, median of the rounds. Prints the ratio (goal <= 1.15);
asserts nothing about time.
"""

from __future__ import annotations

import socket
import statistics
import subprocess
import time
from pathlib import Path

import pytest

from envdeck.backend.instances import api as instances
from tests.conftest import require_tool
from tests.integration.instance_helpers import envdeck, kill_everything, list_json

pytestmark = pytest.mark.benchmark

ROUNDS = 2


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _banner(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as sock:
            sock.settimeout(1.0)
            return sock.recv(4).startswith(b"SSH-")
    except OSError:
        return False


def raw_boot(argv: list[str], tmp: Path) -> float:
    """Launch QEMU with the instance's argv (own sockets and port) and time it to an SSH banner."""
    port = _free_port()
    raw = []
    skip = 0
    for arg in argv:
        if skip:
            skip -= 1
            continue
        if arg in ("-chardev", "-serial", "-qmp"):
            skip = 1
            continue
        if arg.startswith("user,id=net0"):
            arg = f"user,id=net0,hostfwd=tcp:127.0.0.1:{port}-:22"
        if arg.startswith("if=none,id=disk0"):
            arg = arg + ",snapshot=on"
        raw.append(arg)
    raw += ["-serial", f"file:{tmp / 'raw-serial.log'}"]
    t0 = time.monotonic()
    proc = subprocess.Popen(raw, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        while not _banner(port):
            if proc.poll() is not None or time.monotonic() - t0 > 180:
                raise AssertionError("raw QEMU did not boot to sshd")
            time.sleep(0.05)
        return time.monotonic() - t0
    finally:
        proc.kill()
        proc.wait()


def test_bench_start_to_ready_vs_raw_qemu(envdeck_home: Path, tmp_path: Path):
    require_tool("qemu-system-x86_64", "qemu-img")
    try:
        envdeck("create", "bench", check=True, timeout=900)
        envdeck("start", "bench", check=True)  # warm-up (also settles the KVM verdict)
        argv = instances.qemu_argv("bench")
        envdeck("stop", "bench", check=True, timeout=120)
        ours, raws = [], []
        for _ in range(ROUNDS):
            t0 = time.monotonic()
            envdeck("start", "bench", check=True)
            ours.append(time.monotonic() - t0)
            assert list_json()["bench"]["state"] == "ready"
            envdeck("stop", "bench", check=True, timeout=120)
            raws.append(raw_boot(argv, tmp_path))
        ratio = statistics.median(ours) / statistics.median(raws)
        print(
            f"\n[bench boot] envdeck start->ready median {statistics.median(ours):.2f}s "
            f"(runs {', '.join(f'{x:.2f}' for x in ours)}); raw qemu->sshd median "
            f"{statistics.median(raws):.2f}s (runs {', '.join(f'{x:.2f}' for x in raws)}); "
            f"ratio {ratio:.2f} (goal <= 1.15)"
        )
    finally:
        kill_everything(envdeck_home)
