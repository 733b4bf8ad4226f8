"""The docker template's image per guest arch, without building it: config and cache keys."""

from __future__ import annotations

from pathlib import Path

import pytest

from envdeck.backend.config import parse_config
from envdeck.backend.errors import EnvdeckError
from envdeck.backend.images import docker_vm


def test_the_docker_template_takes_an_aarch64_guest():
    cfg = parse_config("template: docker\narch: aarch64\n")
    assert cfg.docker and cfg.arch == "aarch64" and cfg.boots_disk


def test_each_arch_has_its_own_cached_image(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("ENVDECK_CACHE", str(tmp_path))
    x86, arm = (
        docker_vm.cached_image("docker", "x86_64"),
        docker_vm.cached_image("docker", "aarch64"),
    )
    assert x86.parent == arm.parent == tmp_path / "images"
    assert x86.name.startswith("debian-docker-x86_64-") and arm.name.startswith(
        "debian-docker-aarch64-"
    )
    assert docker_vm.image_key("docker", "x86_64") != docker_vm.image_key("docker", "aarch64")


def test_an_unknown_arch_is_refused_before_any_build(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv("ENVDECK_CACHE", str(tmp_path))
    with pytest.raises(EnvdeckError, match="unknown Debian image 'docker' for 'riscv64'"):
        docker_vm.image("docker", arch="riscv64")
    assert not (tmp_path / "images").exists()
