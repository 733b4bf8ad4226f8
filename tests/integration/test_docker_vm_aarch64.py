"""Seed 000 exactly (issue #13 item 6): an arm64 Docker VM running an x86 web server container.

The docker template with ``--arch aarch64``: Debian's arm64 docker.io in an aarch64 guest on
``-M virt`` (AAVMF) under TCG, with qemu-user-static's x86_64 handler registered in the guest
(flag F), so the amd64 busybox test image runs there as ``httpd``; its processes appear in
``envdeck ps --instance d --json`` under ``containerd-shim-runc-v2`` marked ``x86_64``, and its
published port answers on the host.

Nested emulation is slow (x86_64 user-mode emulation inside an emulated aarch64 machine): the
image build (arm64 packages configured through the host's qemu-aarch64) and the boot to
"docker ready" are printed. Measured on a 2-core host: image build about 20 min (once per
builder version), start -> docker ready 110 s, the x86_64 httpd answering 8 s after
``docker run``. The build alone would take CI past an hour, so the test runs only with
ENVDECK_TEST_AARCH64_DOCKER=1; without it, it skips even under CI=true.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import pytest

from tests.conftest import require, require_tool
from tests.integration import docker_images
from tests.integration.instance_helpers import envdeck, kill_everything, list_json
from tests.integration.test_docker_vm import _answers, docker, free_port

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        os.environ.get("ENVDECK_TEST_AARCH64_DOCKER") != "1",
        reason="opt-in (slow nested emulation): set ENVDECK_TEST_AARCH64_DOCKER=1",
    ),
]


@pytest.fixture
def docker_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private Docker CLI config dir (the user's ~/.docker is never touched)."""
    directory = tmp_path / "docker-config"
    directory.mkdir()
    monkeypatch.setenv("DOCKER_CONFIG", str(directory))
    return directory


def test_arm64_docker_vm_runs_an_amd64_container_seen_as_x86_64(
    envdeck_home: Path, docker_config: Path
) -> None:
    require(os.geteuid() == 0, "root (debootstrap builds the docker image)")
    require_tool("debootstrap", "mkfs.vfat", "mcopy", "sfdisk", "qemu-img", "qemu-system-aarch64")
    require(
        os.path.exists("/usr/share/AAVMF/AAVMF_CODE.fd"),
        "aarch64 UEFI firmware (package qemu-efi-aarch64)",
    )
    amd64, _ = docker_images.ensure_images(docker_images.docker_client_or_skip())
    try:
        _run_scenario(envdeck_home, amd64)
    finally:
        envdeck("stop", "d", timeout=300)
        kill_everything(envdeck_home)


def _run_scenario(home: Path, amd64: str) -> None:
    began = time.monotonic()
    envdeck("create", "d", "--template", "docker", "--arch", "aarch64", check=True, timeout=5400)
    print(f"\ncreate (aarch64 docker image build if not cached): {time.monotonic() - began:.1f}s")
    began = time.monotonic()
    started = envdeck("start", "d", timeout=2400)
    print(f"start -> docker ready (aarch64 guest, TCG): {time.monotonic() - began:.1f}s")
    assert started.returncode == 0, started.stdout + started.stderr
    assert "docker ready" in started.stderr
    row = list_json()["d"]
    assert row["state"] == "ready" and row["arch"] == "aarch64" and row["accel"] == "tcg"
    assert envdeck("exec", "d", "--", "uname", "-m", check=True).stdout.strip() == "aarch64"

    binfmt = envdeck("binfmt", "--instance", "d", check=True).stdout
    x86 = next(text for text in binfmt.splitlines() if text.startswith("qemu-x86_64"))
    assert "F" in x86.split()[3]

    ctx = ("--context", "envdeck-d")
    assert docker(*ctx, "version", "--format", "{{.Server.Arch}}") == "arm64\n"
    image = subprocess.run(["docker", "save", amd64], capture_output=True, check=True)
    docker(*ctx, "load", stdin=image.stdout, timeout=600)
    port = free_port()
    began = time.monotonic()
    docker(
        *ctx, "run", "-d", "--platform", "linux/amd64", "--name", "web", "-p", f"{port}:80",
        amd64, "httpd", "-f", "-p", "80", "-h", "/etc", timeout=300,
    )  # fmt: skip
    while not _answers(port):
        assert time.monotonic() - began < 120, envdeck("forwards", "d").stdout
        time.sleep(0.2)
    answered = time.monotonic() - began
    print(f"x86_64 httpd in the arm64 guest answered on the host {answered:.1f}s after 'run'")

    rows = json.loads(envdeck("ps", "--instance", "d", "--json", check=True).stdout)
    by_pid = {row["pid"]: row for row in rows}
    httpd = next(row for row in rows if row["container"] == "web" and row["emulated"])
    assert httpd["emulated"]["arch"] == "x86_64"
    assert httpd["emulated"]["argv"][0].endswith("httpd")
    assert by_pid[httpd["ppid"]]["cmdline"][0].endswith("containerd-shim-runc-v2")

    assert "its docker context envdeck-d" in envdeck("delete", "d", "--force", check=True).stdout
