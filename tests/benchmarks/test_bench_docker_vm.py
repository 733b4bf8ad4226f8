"""Benchmark: `envdeck start` of the docker template -> ready (its last stage is "docker ready":
``docker version`` answered over the forwarded socket) vs a raw QEMU booting the same disk with
the same argv until ``docker version`` answers in the guest over SSH.

Both are second boots of the instance's disk (cloud-init's first-boot work is done by the
warm-up start), one run each. Prints the ratio (goal <= 1.2); asserts nothing about time.
"""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest

from envdeck.backend.instances import api as instances
from tests.benchmarks.test_bench_boot import _free_port
from tests.conftest import require, require_tool
from tests.integration.instance_helpers import envdeck, kill_everything, list_json

pytestmark = pytest.mark.benchmark


def raw_docker_boot(argv: list[str], key: Path, tmp: Path, limit: float = 600) -> float:
    """The instance's QEMU argv (own port, serial to a file, disk snapshot) timed until
    ``docker version`` answers in the guest."""
    port = _free_port()
    raw: list[str] = []
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
            arg += ",snapshot=on"
        raw.append(arg)
    raw += ["-serial", f"file:{tmp / 'raw-serial.log'}"]
    ssh = ["ssh", "-i", str(key), "-p", str(port), "-o", "BatchMode=yes"]
    ssh += ["-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null"]
    ssh += ["-o", "ConnectTimeout=2", "-o", "LogLevel=ERROR", "root@127.0.0.1"]
    t0 = time.monotonic()
    proc = subprocess.Popen(raw, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        while True:
            try:  # (ssh's ConnectTimeout ends at slirp's accept: a slow sshd can hold it)
                answered = subprocess.run(
                    [*ssh, "docker", "version", "--format", "{{.Server.Version}}"],
                    capture_output=True,
                    timeout=30,
                )
            except subprocess.TimeoutExpired:
                answered = None
            if answered and answered.returncode == 0 and answered.stdout.strip():
                return time.monotonic() - t0
            if proc.poll() is not None or time.monotonic() - t0 > limit:
                raise AssertionError("raw QEMU did not boot to a docker that answers")
            time.sleep(0.2)
    finally:
        proc.kill()
        proc.wait()


def test_bench_docker_start_to_ready_vs_raw_qemu(
    envdeck_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    require(os.geteuid() == 0, "root (debootstrap builds the docker image)")
    require_tool("qemu-system-x86_64", "qemu-img", "debootstrap", "ssh")
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "docker-config"))
    (tmp_path / "docker-config").mkdir()
    try:
        envdeck("create", "dbench", "--template", "docker", check=True, timeout=2400)
        envdeck("start", "dbench", check=True, timeout=900)  # warm-up: first boot, cloud-init
        argv = instances.qemu_argv("dbench")
        envdeck("stop", "dbench", check=True, timeout=180)
        t0 = time.monotonic()
        envdeck("start", "dbench", check=True, timeout=900)
        ours = time.monotonic() - t0
        assert list_json()["dbench"]["state"] == "ready"
        envdeck("stop", "dbench", check=True, timeout=180)
        key = envdeck_home / "instances" / "dbench" / "ssh" / "id_ed25519"
        raw = raw_docker_boot(argv, key, tmp_path)
        print(
            f"\n[bench docker] envdeck start->docker ready {ours:.2f}s; raw QEMU->docker version"
            f" {raw:.2f}s; ratio {ours / raw:.2f} (goal <= 1.2)"
        )
    finally:
        envdeck("stop", "dbench", timeout=180)
        kill_everything(envdeck_home)
