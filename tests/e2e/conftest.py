"""Fixtures for driving the dashboard: private dirs, a synthetic replay, a fake backend."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.synthetic import write_recording
from tests.e2e.tui_harness import FakeBackend


@pytest.fixture(autouse=True)
def private_dirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No user config or themes leak in; instance dirs live in tmp."""
    monkeypatch.setenv("ENVDECK_CONFIG", str(tmp_path / "config"))
    monkeypatch.setenv("ENVDECK_HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture
def recording(tmp_path: Path) -> Path:
    """The synthetic session (generated here, not a real recording)."""
    return write_recording(tmp_path / "synthetic.jsonl")


@pytest.fixture
def backend() -> FakeBackend:
    """A recorder of backend calls, for ``make_app(..., backend=backend)``."""
    return FakeBackend()
