"""The docker instance shares the user's home (issue #12 item 5), as Lima's docker template does:
read-only, at the same path in the guest, so ``docker --context envdeck-NAME run -v
"$PWD":/src ...`` on the host sees the host's files, and a container cannot change them. The
test's HOME is a temp dir (as root, the home /root is not shared: it would hide the guest's
/root). One more boot of the cached docker image under TCG; its time is printed."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest

from tests.conftest import require_tool
from tests.integration import docker_images
from tests.integration.instance_helpers import envdeck, kill_everything, list_json
from tests.integration.test_docker_vm import docker, docker_config, require_docker_image_tools

pytestmark = pytest.mark.integration
__all__ = ["docker_config"]  # the fixture this module uses


def test_the_docker_instance_shares_the_home_read_only(
    envdeck_home: Path, docker_config: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    require_docker_image_tools()
    require_tool("docker")
    amd64 = docker_images.ensure_amd64(docker_images.docker_client_or_skip())
    home = tmp_path / "home"
    project = home / "project"
    project.mkdir(parents=True)
    (project / "file").write_text("from the host's home\n")
    monkeypatch.setenv("HOME", str(home))
    ctx = ("--context", "envdeck-dm")
    try:
        created = envdeck("create", "dm", "--template", "docker", check=True, timeout=2400)
        assert "warning" not in created.stderr, created.stderr
        began = time.monotonic()
        started = envdeck("start", "dm", timeout=900)
        print(
            f"\ndocker instance with the home mount: start -> ready {time.monotonic() - began:.1f}s"
        )
        assert started.returncode == 0, started.stdout + started.stderr
        assert "folders mounted" in started.stderr
        assert list_json()["dm"]["mounts"] == [
            {"location": str(home), "mount_point": str(home), "writable": False, "type": "9p"}
        ]
        images = subprocess.run(["docker", "save", amd64], capture_output=True, check=True)
        docker(*ctx, "load", stdin=images.stdout, timeout=300)

        seen = docker(*ctx, "run", "--rm", "-v", f"{project}:/src", amd64, "cat", "/src/file")
        assert seen == "from the host's home\n"
        for volume in (f"{project}:/src", f"{project}:/src:rw"):
            wrote = subprocess.run(
                ["docker", *ctx, "run", "--rm", "-v", volume, amd64,
                 "sh", "-c", "echo x > /src/new"],
                capture_output=True, text=True, timeout=120,
            )  # fmt: skip
            assert wrote.returncode != 0 and "Read-only file system" in wrote.stderr, wrote
        assert sorted(p.name for p in project.iterdir()) == ["file"]
    finally:
        envdeck("stop", "dm", timeout=180)
        kill_everything(envdeck_home)
