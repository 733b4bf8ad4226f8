"""Endpoint discovery: DOCKER_HOST, instance sockets, Docker contexts; resolution by name."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from envdeck.backend.containers import endpoints as de
from envdeck.backend.errors import UserInputError


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("ENVDECK_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "dockercfg"))
    monkeypatch.delenv("DOCKER_HOST", raising=False)
    monkeypatch.delenv("DOCKER_TLS_VERIFY", raising=False)
    monkeypatch.delenv("DOCKER_CERT_PATH", raising=False)
    return tmp_path


def _context(cfg: Path, name: str, host: str, *, tls: bool = False) -> None:
    digest = hashlib.sha256(name.encode()).hexdigest()
    meta = cfg / "contexts" / "meta" / digest / "meta.json"
    meta.parent.mkdir(parents=True)
    meta.write_text(
        json.dumps(
            {
                "Name": name,
                "Metadata": {},
                "Endpoints": {"docker": {"Host": host, "SkipTLSVerify": False}},
            }
        )
    )
    if tls:
        (cfg / "contexts" / "tls" / digest / "docker").mkdir(parents=True)


def test_host_default_and_docker_host(env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert de.host_endpoint() == de.Endpoint("host", "unix:///var/run/docker.sock")
    monkeypatch.setenv("DOCKER_HOST", "tcp://127.0.0.1:2376")
    assert de.host_endpoint().url == "tcp://127.0.0.1:2376"


def test_instances_only_with_a_socket(env: Path) -> None:
    inst = env / "home" / "instances"
    (inst / "alpha").mkdir(parents=True)
    (inst / "beta").mkdir(parents=True)
    (inst / "beta" / "docker.sock").touch()
    found = de.instance_endpoints()
    assert [e.name for e in found] == ["instance:beta"]
    assert found[0].socket_path == inst / "beta" / "docker.sock"


def test_contexts_with_tls_and_dedupe(env: Path) -> None:
    cfg = env / "dockercfg"
    _context(cfg, "remote", "tcp://10.0.0.5:2376", tls=True)
    _context(cfg, "same-as-host", "unix:///var/run/docker.sock")
    (cfg / "contexts" / "meta" / "broken").mkdir(parents=True)
    (cfg / "contexts" / "meta" / "broken" / "meta.json").write_text("{not json")
    contexts = de.context_endpoints()
    assert {c.name for c in contexts} == {"context:remote", "context:same-as-host"}
    remote = next(c for c in contexts if c.name == "context:remote")
    assert remote.tls_dir and remote.tls_dir.endswith("/docker") and remote.context == "remote"
    assert [e.name for e in de.discover()] == ["host", "context:remote"]


def test_resolve(env: Path) -> None:
    _context(env / "dockercfg", "remote", "tcp://10.0.0.5:2376")
    assert de.resolve(None).name == "host"
    assert de.resolve("remote").name == "context:remote"
    assert de.resolve("context:remote").url == "tcp://10.0.0.5:2376"
    assert de.resolve("unix:///tmp/x.sock").url == "unix:///tmp/x.sock"
    with pytest.raises(UserInputError, match="unknown docker endpoint"):
        de.resolve("nope")


def test_unreachable_reason_names_the_missing_socket(env: Path) -> None:
    ep = de.Endpoint("instance:x", f"unix://{env}/none.sock")
    assert de.unreachable_reason(ep, OSError("boom")) == f"no socket at {env}/none.sock"
