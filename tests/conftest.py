"""Shared test helpers.

``require(...)``: integration tests call it for each real component they need. Outside CI a
missing component skips the test with the reason; under CI=true it fails, so CI never goes green
on tests that did not run.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")

# The booted-once docker VM shared by the tests that need one (fixture ``docker_vm``).
pytest_plugins = ["tests.docker_vm_fixture"]


def require(condition: bool, what: str) -> None:
    """Skip (locally) or fail (CI=true) when ``condition`` is false."""
    if condition:
        return
    message = f"missing component: {what}"
    if IN_CI:
        pytest.fail(message + " (CI=true: a missing component is a failure)")
    pytest.skip(message)


def require_tool(*names: str) -> None:
    """Require host programs on PATH."""
    for name in names:
        found = shutil.which(name) or shutil.which(name, path="/usr/sbin:/sbin")
        require(found is not None, f"program '{name}'")


@pytest.fixture
def envdeck_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private ENVDECK_HOME for one test (the tiny image cache stays shared, see below)."""
    home = tmp_path / "envdeck-home"
    monkeypatch.setenv("ENVDECK_HOME", str(home))
    monkeypatch.setenv("ENVDECK_CACHE", shared_image_cache())
    return home


def shared_image_cache() -> str:
    """The image cache shared across tests and runs (building the images takes a while)."""
    return os.environ.get("ENVDECK_CACHE") or str(Path.home() / ".cache" / "envdeck-test-cache")


@pytest.fixture
def local_sshd(tmp_path: Path):
    """An OpenSSH sshd on 127.0.0.1 with its own keys (see tests/local_sshd.py); needs root."""
    from tests.local_sshd import start_local_sshd

    with start_local_sshd(tmp_path) as server:
        yield server
