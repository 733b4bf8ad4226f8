"""Instances work for a normal user, not only root: build the tiny image, boot, exec, stop.

As root, the test creates an unprivileged user and runs envdeck as that user from a venv of
the system python (root's own python may live in a private home); otherwise it runs as the
current, already unprivileged, user. Either way nothing reads /boot or needs /dev/kvm.
"""

from __future__ import annotations

import json
import os
import pwd
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

from tests.conftest import require, require_tool

pytestmark = pytest.mark.integration

USER = "envdeck-test-user"
REPO = Path(__file__).resolve().parents[2]
VENV = Path("/var/tmp/envdeck-user-venv")


def _as_user(argv: list[str], home: Path, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    env = {
        "PATH": "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin",
        "HOME": str(home),
        "ENVDECK_HOME": str(home / "envdeck"),
        "LANG": "C.UTF-8",
    }
    if os.geteuid() == 0:
        argv = ["runuser", "-u", USER, "--", "env", *(f"{k}={v}" for k, v in env.items()), *argv]
        return subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    return subprocess.run(
        argv, capture_output=True, text=True, timeout=timeout, env={**os.environ, **env}
    )


def _prepare_root_side(tmp_path: Path) -> tuple[Path, Path]:
    """Create the user, a venv it owns, and envdeck installed there from a readable copy."""
    require_tool("runuser", "useradd")
    require(Path("/usr/bin/python3").exists(), "the system python3 (Debian python3, python3-venv)")
    try:
        pwd.getpwnam(USER)
    except KeyError:
        subprocess.run(
            ["useradd", "--system", "--create-home", "--shell", "/bin/sh", USER], check=True
        )
    user = pwd.getpwnam(USER)
    home = Path(user.pw_dir)
    source = tmp_path / "src"
    shutil.copytree(
        REPO,
        source,
        ignore=shutil.ignore_patterns(".git", ".venv", "__pycache__", "*.egg-info", "build"),
    )
    os.chmod(tmp_path, 0o755)
    for path in [source, *source.rglob("*")]:
        path.chmod(path.stat().st_mode | stat.S_IROTH | (stat.S_IXOTH if path.is_dir() else 0))
    if not (VENV / "bin" / "python").exists():
        subprocess.run(["/usr/bin/python3", "-m", "venv", str(VENV)], check=True)
    # Dependencies once (kept between runs), envdeck itself each run.
    pip = [str(VENV / "bin" / "python"), "-m", "pip", "install", "-q"]
    subprocess.run([*pip, str(source)], check=True, capture_output=True, timeout=600)
    subprocess.run(
        [*pip, "--no-deps", "--force-reinstall", str(source)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    subprocess.run(["chmod", "-R", "a+rX", str(VENV)], check=True)
    return home, VENV / "bin" / "envdeck"


def test_a_normal_user_can_build_boot_and_stop_the_tiny_guest(tmp_path: Path):
    require_tool("qemu-system-x86_64", "qemu-img", "apt-get", "dpkg-deb")
    if os.geteuid() == 0:
        home, envdeck = _prepare_root_side(tmp_path)
    else:
        home, envdeck = Path.home(), Path(shutil.which("envdeck") or "envdeck")
    name = "user-tiny"
    _as_user([str(envdeck), "delete", name, "--force"], home)
    try:
        created = _as_user([str(envdeck), "create", name, "--memory", "256MiB"], home, timeout=900)
        assert created.returncode == 0, created.stderr
        started = _as_user([str(envdeck), "start", name], home)
        assert started.returncode == 0, started.stderr + started.stdout
        assert "ready" in started.stdout
        row = json.loads(_as_user([str(envdeck), "list", "--json"], home).stdout)[0]
        assert row["state"] == "ready" and row["accel"] == "tcg"
        out = _as_user([str(envdeck), "exec", name, "--", "cat", "/etc/hostname"], home)
        assert out.returncode == 0 and out.stdout.strip() == name
        inst = home / "envdeck" / "instances" / name
        info = inst.stat()
        assert (
            stat.S_IMODE(info.st_mode) == 0o700
            and info.st_uid
            == pwd.getpwnam(USER if os.geteuid() == 0 else pwd.getpwuid(os.getuid()).pw_name).pw_uid
        )
    finally:
        stopped = _as_user([str(envdeck), "stop", name], home, timeout=120)
        _as_user([str(envdeck), "delete", name, "--force"], home)
    assert stopped.returncode == 0, stopped.stderr
