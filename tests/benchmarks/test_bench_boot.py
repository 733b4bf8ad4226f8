"""Benchmark: `envdeck start` -> ready vs a raw QEMU boot of the same guest until sshd answers.

Both measured in this run, alternating, median of the rounds. Prints the ratio (goal <= 1.15);
asserts nothing about time.
"""

from __future__ import annotations

import json
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

ROUNDS = 3  # (odd: the median is a run, not an average of two)


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


#: the marks of a start in its events.jsonl: (label, event kind, stage or state)
MARKS = (
    ("agent up", "instance.status", "starting"),
    ("qemu exec", "instance.status", "booting"),  # (its started_at: QEMU's own start time)
    ("qemu started", "instance.stage", "qemu started"),
    ("ssh port open", "instance.stage", "ssh port open"),
    ("ssh authenticated", "instance.stage", "ssh authenticated"),
    ("ready", "instance.status", "ready"),
)


def breakdown(events: Path, since: int, began: float, ended: float) -> str:
    """Where one start's time went, from the agent's events after byte ``since`` of
    events.jsonl: each mark's wall time since the CLI was run (``began``), then the CLI's end."""
    seen: dict[str, float] = {}
    for text in events.read_bytes()[since:].decode().splitlines():
        event = json.loads(text)
        for label, kind, what in MARKS:
            mark = event.get("stage") if kind == "instance.stage" else event.get("state")
            done = kind == "instance.status" or event.get("status") == "done"
            if event["kind"] == kind and mark == what and done and label not in seen:
                seen[label] = event.get("started_at" if label == "qemu exec" else "ts") - began
    marks = [f"{label} {seen[label]:.2f}" for label, _, _ in MARKS if label in seen]
    return ", ".join([*marks, f"CLI done {ended - began:.2f}"])


def compare_with_raw(home: Path, name: str, tmp: Path, tag: str, goal: float) -> None:
    """Alternate ``ROUNDS`` starts of the (stopped, warmed-up) instance ``name`` with raw boots
    of its argv; print both medians, their ratio against ``goal`` and each start's breakdown."""
    argv = instances.qemu_argv(name)
    ours, raws, where = [], [], []
    events = home / "instances" / name / "events.jsonl"
    for _ in range(ROUNDS):
        since, began = events.stat().st_size, time.time()
        t0 = time.monotonic()
        envdeck("start", name, check=True)
        ours.append(time.monotonic() - t0)
        where.append(breakdown(events, since, began, time.time()))
        assert list_json()[name]["state"] == "ready"
        envdeck("stop", name, check=True, timeout=120)
        raws.append(raw_boot(argv, tmp))
    ratio = statistics.median(ours) / statistics.median(raws)
    print(
        f"\n[bench {tag}] envdeck start->ready median {statistics.median(ours):.2f}s "
        f"(runs {', '.join(f'{x:.2f}' for x in ours)}); raw {Path(argv[0]).name}->sshd median "
        f"{statistics.median(raws):.2f}s (runs {', '.join(f'{x:.2f}' for x in raws)}); "
        f"ratio {ratio:.2f} (goal <= {goal})"
    )
    for n, marks in enumerate(where, 1):
        print(f"[bench {tag}] run {n}, seconds since the CLI was run: {marks}")


def test_bench_start_to_ready_vs_raw_qemu(envdeck_home: Path, tmp_path: Path):
    require_tool("qemu-system-x86_64", "qemu-img")
    try:
        envdeck("create", "bench", check=True, timeout=900)
        envdeck("start", "bench", check=True)  # warm-up (also settles the KVM verdict)
        envdeck("stop", "bench", check=True, timeout=120)
        compare_with_raw(envdeck_home, "bench", tmp_path, "boot", 1.15)
    finally:
        kill_everything(envdeck_home)
