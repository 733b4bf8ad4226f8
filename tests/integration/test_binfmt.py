"""binfmt_misc: the real registry, the CLI, and a register/unregister round trip."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from envdeck.backend.errors import EnvdeckError, NotFound
from envdeck.backend.processes import binfmt
from tests.conftest import require

pytestmark = pytest.mark.integration

BINFMT = Path("/proc/sys/fs/binfmt_misc")
ENVDECK = [sys.executable, "-m", "envdeck.backend.cli.main"]


def need_registry() -> None:
    require((BINFMT / "status").exists(), "binfmt_misc mounted (.ci/setup.d/20-emulation.sh)")


def test_real_registry_parses():
    need_registry()
    reg = binfmt.read_registry()
    assert reg.mounted and reg.error is None
    names = sorted(p.name for p in BINFMT.iterdir() if p.name not in binfmt.CONTROL_FILES)
    assert sorted(h.name for h in reg.handlers) == names
    for h in reg.handlers:
        assert h.interpreter.startswith("/")
        assert set(h.flags) <= set("POCF")
    aarch64 = [h for h in reg.handlers if h.arch == "aarch64"]
    require(bool(aarch64), "a handler for aarch64 (qemu-user-static)")
    assert "F" in aarch64[0].flags


def test_cli_lists_the_registry_as_json():
    need_registry()
    out = subprocess.run([*ENVDECK, "binfmt", "--json"], capture_output=True, text=True, check=True)
    data = json.loads(out.stdout)
    assert data["mounted"] is True
    assert {h["name"] for h in data["handlers"]} == {
        h.name for h in binfmt.read_registry().handlers
    }


def test_register_and_unregister_an_arch():
    need_registry()
    require(os.geteuid() == 0, "root (to register binfmt handlers)")
    arch = "riscv64"
    require(not (BINFMT / f"qemu-{arch}").exists(), f"qemu-{arch} not registered already")
    require(
        binfmt.QEMU_USER_ARCHES and Path("/usr/bin/qemu-riscv64-static").exists(),
        "qemu-riscv64-static",
    )
    try:
        result = subprocess.run(
            [*ENVDECK, "binfmt", "register", arch], capture_output=True, text=True
        )
        assert result.returncode == 0, result.stderr
        handler = binfmt.parse_entry(f"qemu-{arch}", (BINFMT / f"qemu-{arch}").read_text())
        assert handler.arch == arch and "F" in handler.flags and handler.enabled
        assert binfmt.register_arch(arch) == "already registered"
    finally:
        if (BINFMT / f"qemu-{arch}").exists():
            binfmt.unregister(arch)
    assert not (BINFMT / f"qemu-{arch}").exists()
    with pytest.raises(NotFound):
        binfmt.unregister(arch)


def test_register_as_non_root_is_a_clear_error():
    need_registry()
    require(os.geteuid() == 0, "root (to drop to nobody in a child)")
    require(not (BINFMT / "qemu-riscv64").exists(), "qemu-riscv64 not registered already")
    read_fd, write_fd = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover - runs in the child
        message = b"no error"
        try:
            os.setgroups([])
            os.setgid(65534)
            os.setuid(65534)
            binfmt.register_arch("riscv64")
        except EnvdeckError as exc:
            message = str(exc).encode()
        finally:
            os.write(write_fd, message)
            os._exit(0)
    os.close(write_fd)
    with os.fdopen(read_fd, "rb") as fh:
        message = fh.read().decode()
    os.waitpid(child, 0)
    assert "needs root" in message and "hint" in message
    assert not (BINFMT / "qemu-riscv64").exists()
