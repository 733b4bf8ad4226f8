"""The docker instance shares the user's home (issue #12 item 5), as Lima's docker template does:
read-only, at the same path in the guest, so ``docker --context envdeck-NAME run -v
"$PWD":/src ...`` on the host sees the host's files, and a container cannot change them.

On the session's shared docker VM (tests/docker_vm_fixture.py): its HOME is a temp dir (as root,
the home /root is not shared: it would hide the guest's /root), made before the instance was, so
the home mount is the template's default; this test's folder appears in it afterwards."""

from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path

import pytest

from tests.docker_vm_fixture import DockerVM, docker
from tests.integration.instance_helpers import list_json

pytestmark = pytest.mark.integration


def test_the_docker_instance_shares_the_home_read_only(docker_vm: DockerVM) -> None:
    amd64, _ = docker_vm.images
    home = docker_vm.user_home
    project = Path(tempfile.mkdtemp(prefix="project-", dir=home))
    (project / "file").write_text("from the host's home\n")
    ctx = docker_vm.context
    assert "warning" not in docker_vm.created.stderr, docker_vm.created.stderr
    assert "folders mounted" in docker_vm.started.stderr
    assert list_json()["dev"]["mounts"] == [
        {"location": str(home), "mount_point": str(home), "writable": False, "type": "9p"}
    ]

    seen = docker(*ctx, "run", "--rm", "-v", f"{project}:/src", amd64, "cat", "/src/file")
    assert seen == "from the host's home\n"
    for volume in (f"{project}:/src", f"{project}:/src:rw"):
        wrote = subprocess.run(
            ["docker", *ctx, "run", "--rm", "-v", volume, amd64, "sh", "-c", "echo x > /src/new"],
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert wrote.returncode != 0 and "Read-only file system" in wrote.stderr, wrote
    assert sorted(p.name for p in project.iterdir()) == ["file"]
