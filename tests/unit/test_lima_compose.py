"""Lima's base: composition on Lima-shaped files written here from Lima's documented rules."""

from __future__ import annotations

import hashlib
import http.server
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from envdeck.backend.config import ConfigError, check_file, load_config

DIGEST = "sha512:" + "ab" * 64


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def error_of(path: Path) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        check_file(path)
    assert info.value.hint and info.value.exit_code == 2
    return info.value


def test_scalars_of_the_file_win_maps_merge_lists_append(tmp_path: Path):
    write(
        tmp_path,
        "base.yaml",
        "cpus: 4\nmemory: 1GiB\nssh:\n  localPort: 2222\n"
        "portForwards:\n  - guestPort: 2\nenv:\n  A: base\n  B: base\n",
    )
    top = write(
        tmp_path,
        "top.yaml",
        "base: base.yaml\ncpus: 2\nportForwards:\n  - guestPort: 1\nenv:\n  A: top\n",
    )
    cfg = load_config(top)
    assert (cfg.cpus, cfg.memory_bytes, cfg.ssh_local_port) == (2, 1 << 30, 2222)
    assert [rule.guest_port_range for rule in cfg.port_forwards] == [(1, 1), (2, 2)]
    assert dict(cfg.env) == {"A": "top", "B": "base"}


def test_provision_and_probes_of_each_base_are_prepended_as_lima_merges(tmp_path: Path):
    """Lima merges base[0], then base[1], each one's scripts going before what is there."""
    for name in ("one", "two"):
        write(
            tmp_path,
            f"{name}.yaml",
            f"provision:\n  - script: echo {name}\nprobes:\n  - script: echo {name}\n",
        )
    top = write(
        tmp_path,
        "top.yaml",
        "base: [one.yaml, two.yaml]\nprovision:\n  - script: echo top\n"
        "probes:\n  - script: echo top\n",
    )
    cfg = load_config(top)
    assert [s.script for s in cfg.provision] == ["echo two", "echo one", "echo top"]
    assert [p.script for p in cfg.probes] == ["echo two", "echo one", "echo top"]


def test_dns_unique_mount_types_and_highest_minimum_version(tmp_path: Path):
    write(
        tmp_path,
        "base.yaml",
        "minimumLimaVersion: 9.1.0\ndns: [1.1.1.1]\nmountTypesUnsupported: [9p, virtiofs]\n",
    )
    top = write(
        tmp_path,
        "top.yaml",
        "base: ./base.yaml\nminimumLimaVersion: 2.0.0\ndns: [8.8.8.8]\n"
        "mountTypesUnsupported: [9p]\n",
    )
    checked = check_file(top)
    composed = checked.composed
    assert "9.1.0" in composed and "2.0.0" not in composed
    assert "8.8.8.8" in composed and "1.1.1.1" not in composed
    assert composed.count("9p") == 1 and "virtiofs" in composed
    assert any("minimumLimaVersion" in w and "9.1.0" in w for w in checked.warnings)


def test_template_locator_through_lima_templates_path(tmp_path: Path, monkeypatch):
    lib = tmp_path / "lib"
    write(lib, "_images/distro.yaml", "images:\n  - location: disk.qcow2\n    arch: x86_64\n")
    monkeypatch.setenv("LIMA_TEMPLATES_PATH", f"{tmp_path / 'empty'}:{lib}")
    top = write(tmp_path / "mine", "top.yaml", "base: template:_images/distro\n")
    checked = check_file(top)
    assert checked.image is not None
    assert checked.image.location == str(lib / "_images" / "disk.qcow2")  # against its file
    assert "base:" not in checked.composed and str(lib) in checked.composed


def test_a_missing_template_names_where_it_looked(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("LIMA_TEMPLATES_PATH", str(tmp_path / "lib"))
    top = write(tmp_path, "top.yaml", "cpus: 1\nbase:\n  - template:nope\n")
    err = error_of(top)
    assert err.where == f"{top}:3:5"
    assert str(tmp_path / "lib") in err.message and "/usr/share/lima/templates" in err.message


def test_a_missing_base_file_and_a_cycle_are_errors(tmp_path: Path):
    top = write(tmp_path, "top.yaml", "base: gone.yaml\n")
    assert "does not exist" in error_of(top).message
    write(tmp_path, "a.yaml", "base: b.yaml\n")
    write(tmp_path, "b.yaml", "base: a.yaml\n")
    err = error_of(tmp_path / "a.yaml")
    assert "cycle" in err.message and err.where == f"{tmp_path / 'b.yaml'}:1:7"


def test_an_error_in_a_base_points_into_the_base(tmp_path: Path):
    write(tmp_path, "base.yaml", "cpus: 1\nmemory: lots\n")
    top = write(tmp_path, "top.yaml", "base: base.yaml\n")
    err = error_of(top)
    assert err.where == f"{tmp_path / 'base.yaml'}:2:9" and "memory" in err.message


def test_base_with_digest_checked(tmp_path: Path):
    base = write(tmp_path, "base.yaml", "cpus: 3\n")
    good = "sha256:" + hashlib.sha256(base.read_bytes()).hexdigest()
    top = write(tmp_path, "top.yaml", f"base:\n  - url: base.yaml\n    digest: {good}\n")
    assert load_config(top).cpus == 3
    bad = write(tmp_path, "bad.yaml", f"base:\n  - url: base.yaml\n    digest: {DIGEST}\n")
    assert "does not match its digest" in error_of(bad).message


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A loopback HTTP server for ``tmp_path/www``."""
    root = tmp_path / "www"
    root.mkdir()

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, directory=str(root), **kwargs)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Quiet)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", root
    finally:
        server.shutdown()
        server.server_close()


def test_url_bases_with_digest_and_relative_locations(tmp_path: Path, served):
    url, root = served
    write(root, "t/inner.yaml", "cpus: 3\n")
    outer = write(root, "t/outer.yaml", "base: inner.yaml\nimages:\n  - location: img.qcow2\n")
    digest = "sha512:" + hashlib.sha512(outer.read_bytes()).hexdigest()
    top = write(tmp_path, "top.yaml", f"base:\n  - url: {url}/t/outer.yaml\n    digest: {digest}\n")
    checked = check_file(top)
    assert checked.config.cpus == 3
    assert checked.image is not None and checked.image.location == f"{url}/t/img.qcow2"
    wrong = write(
        tmp_path, "wrong.yaml", f"base:\n  - url: {url}/t/outer.yaml\n    digest: {DIGEST}\n"
    )
    err = error_of(wrong)
    assert "does not match its digest" in err.message and err.where == f"{wrong}:2:5"
    assert "HTTP 404" in error_of(write(tmp_path, "nf.yaml", f"base: {url}/none.yaml\n")).message


def test_a_url_plugin_scheme_without_its_plugin_says_so(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    top = write(tmp_path, "top.yaml", "base: rawhide:_images/x\n")
    assert "limactl-url-rawhide" in error_of(top).message
    plugin = write(tmp_path, "limactl-url-rawhide", f"#!/bin/sh\necho {tmp_path}/b.yaml\n")
    plugin.chmod(0o755)
    write(tmp_path, "b.yaml", "cpus: 2\n")
    assert load_config(top).cpus == 2
