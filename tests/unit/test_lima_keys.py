"""Every Lima key gets a decision: honoured, accepted with one warning line, or refused."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from envdeck.backend.cli.main import main
from envdeck.backend.config import ConfigError, ImageSpec, check_config, parse_config
from envdeck.backend.config.lima_keys import LIMA_KEYS
from envdeck.backend.images import cloud as cloud_images

SHA512 = "sha512:" + "cd" * 64
SHA256 = "sha256:" + "ab" * 32


def error_of(text: str) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        parse_config(text, "l.yaml")
    assert info.value.hint and info.value.exit_code == 2
    return info.value


WARNED = {
    "containerd": "containerd:\n  system: true\n",
    "mountTypesUnsupported": "mountTypesUnsupported: [9p]\n",
    "mountInotify": "mountInotify: true\n",
    "hostResolver": "hostResolver:\n  hosts:\n    a: b\n",
    "dns": "dns: [1.1.1.1]\n",
    "video": "video:\n  display: vnc\n",
    "audio": "audio:\n  device: default\n",
    "rosetta": "rosetta:\n  enabled: true\n",
    "nestedVirtualization": "nestedVirtualization: true\n",
    "vmOpts": "vmOpts:\n  qemu:\n    minimumVersion: 8.2.1\n",
    "networks": "networks:\n  - lima: shared\n",
    "additionalDisks": "additionalDisks: [data]\n",
    "tpm": "tpm: true\n",
    "osOpts": "osOpts:\n  windows:\n    x: 1\n",
    "propagateProxyEnv": "propagateProxyEnv: true\n",
    "guestInstallPrefix": "guestInstallPrefix: /opt\n",
}


def test_the_table_decides_every_key_the_tests_cover():
    warned = {k for k, v in LIMA_KEYS.items() if v.decision == "warned"}
    assert warned == set(WARNED)


@pytest.mark.parametrize("key", sorted(WARNED))
def test_warned_keys_give_one_line_with_the_reason(key: str):
    checked = check_config(WARNED[key], "l.yaml")
    (line,) = checked.warnings
    assert line.startswith("l.yaml:1:1: ") and f"{key}: ignored: " in line
    assert LIMA_KEYS[key].why in line


@pytest.mark.parametrize("text", ["containerd:\n  system: false\n  user: false\n", "video: null\n"])
def test_a_warned_key_that_asks_for_nothing_is_silent(text: str):
    assert check_config(text, "l.yaml").warnings == ()


def test_containerd_points_at_docker():
    (line,) = check_config(WARNED["containerd"], "l.yaml").warnings
    assert "does not install containerd" in line and "docker" in line.lower()


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("os: Darwin\n", "os: Darwin cannot run here"),
        ("os: FreeBSD\n", "Linux guests only"),
        ("os: Windows\n", "Linux guests only"),
        ("vmType: vz\n", "macOS hosts"),
        ("vmType: krunkit\n", "macOS hosts"),
        ("vmType: wsl2\n", "Windows hosts"),
        ("arch: riscv64\n", "arch is 'riscv64'"),
        ("minimumLimaVersion: soon\n", "not a version"),
        ("portForwards:\n  - guestPort: 53\n    proto: udp\n", "envdeck forwards TCP"),
    ],
)
def test_what_cannot_run_here_is_refused_with_the_reason(text: str, words: str):
    err = error_of(text)
    assert words in err.message and err.where.startswith("l.yaml:")


def test_silent_and_honoured_keys():
    checked = check_config(
        "vmType: qemu\nos: Linux\nminimumLimaVersion: 2.0.0\narch: default\n"
        "cpuType:\n  x86_64: host\nmessage: hi {{.Name}}\nenv:\n  A: '1'\n"
        "param:\n  P: x\nuser:\n  name: dev\n  uid: 1500\n",
        "demo.yaml",
    )
    cfg = checked.config
    assert checked.warnings == ()
    assert (
        cfg.message == "hi demo" and dict(cfg.env) == {"A": "1"} and dict(cfg.param) == {"P": "x"}
    )
    assert cfg.user is not None and (cfg.user.name, cfg.user.uid, cfg.user.home) == (
        "dev",
        1500,
        "/home/dev.linux",
    )
    assert cfg.arch in ("x86_64", "aarch64") and cfg.cpu_type == {"x86_64": "host"}


def test_a_newer_minimum_lima_version_is_a_warning():
    (line,) = check_config("minimumLimaVersion: 99.0.0\n", "l.yaml").warnings
    assert "99.0.0" in line and "envdeck follows Lima" in line


def test_ssh_keys_beyond_those_honoured_are_warned():
    checked = check_config(
        "ssh:\n  localPort: 0\n  forwardAgent: true\n  forwardX11: true\n", "l.yaml"
    )
    (line,) = checked.warnings
    assert line.startswith("l.yaml:4:3: ssh.forwardX11: ignored")
    assert checked.config.guest.forward_agent


# --- variables -------------------------------------------------------------------------------


def test_variables_in_sockets_provision_probes_and_message(envdeck_home: Path):
    cfg = parse_config(
        "param:\n  Mode: fast\n  On: true\nuser:\n  name: dev\n  uid: 1234\n"
        "portForwards:\n  - guestSocket: /run/user/{{.UID}}/d.sock\n"
        "    hostSocket: '{{.Dir}}/sock/d.sock'\n"
        "provision:\n  - mode: data\n    path: '{{.Home}}/m'\n    content: '{{.Param.Mode}}'\n"
        "    owner: '{{.User}}'\n"
        "probes:\n  - script: 'test {{.Hostname}} = {{.Name}}'\n"
        'message: |\n  a{{if .Param.On}} on{{else}} off{{end}}\n  {{- if eq .HostOS "linux"}}'
        " linux{{- end}} {{if not (and .Param.Mode .Param.On)}}never{{end}}\n",
        "web.yaml",
    )
    (rule,) = cfg.port_forwards
    assert rule.guest_socket == "/run/user/1234/d.sock"
    assert rule.host_socket == f"{envdeck_home}/instances/web/sock/d.sock"
    (step,) = cfg.provision
    assert (step.path, step.content, step.owner) == ("/home/dev.linux/m", "fast", "dev")
    assert cfg.probes[0].script == "test web = web"
    assert cfg.message == "a on linux"


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("message: '{{.Nope}}'\n", "unknown template variable {{.Nope}}"),
        ("message: '{{.Param.x}}'\n", "{{.Param.x}} is not set"),
        ("message: '{{if .Name}}'\n", "{{end}}"),
        ("mounts:\n  - location: '{{.Bogus}}'\n", "{{.Bogus}}"),
    ],
)
def test_an_unknown_variable_is_an_error_at_its_node(text: str, words: str):
    err = error_of(text)
    assert words in err.message and err.where.startswith("l.yaml:")


def test_instance_config_fields_read_the_document():
    cfg = parse_config(
        "vmOpts:\n  vz:\n    rosetta:\n      enabled: true\n"
        "message: '{{if .Instance.Config.VMOpts.vz.rosetta.enabled}}R{{end}}"
        "{{if .Instance.Config.VMOpts.qemu}}Q{{end}}'\n"
    )
    assert cfg.message == "R"


# --- images ----------------------------------------------------------------------------------


def test_multi_arch_images_pick_the_instance_arch_in_order():
    cfg = parse_config(
        "images:\n"
        f"  - location: https://e.org/arm.img\n    arch: aarch64\n    digest: {SHA512}\n"
        "  - location: https://e.org/rv.img\n    arch: riscv64\n"
        "  - location: https://e.org/s390.img\n    arch: s390x\n"
        "  - location: https://e.org/v7.img\n    arch: armv7l\n    variant: v7\n"
        f"  - location: https://e.org/a.img\n    arch: x86_64\n    digest: {SHA512}\n"
        "    archVariant: v2\n"
        "  - location: https://e.org/b.img\n    arch: x86_64\n"
        "    kernel:\n      location: https://e.org/vmlinuz\n"
    )
    assert cfg.images == (ImageSpec("https://e.org/a.img", "x86_64", SHA512),)


def test_a_kernel_entry_is_refused_when_it_is_the_one_chosen():
    err = error_of(
        "images:\n  - location: https://e.org/a.img\n    kernel:\n"
        "      location: https://e.org/vmlinuz\n    initrd:\n      location: https://e.org/i\n"
    )
    assert "boots its own kernel" in err.message and err.where == "l.yaml:3:5"


def test_digests_are_sha256_or_sha512():
    assert parse_config(f"images:\n  - location: /a\n    digest: {SHA256}\n").images
    err = error_of("images:\n  - location: /a\n    digest: sha512:12\n")
    assert "sha512" in err.message and err.where == "l.yaml:3:13"


def test_sha512_downloads_are_verified(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("ENVDECK_CACHE", str(tmp_path / "cache"))
    source = tmp_path / "image.raw"
    source.write_bytes(b"\0" * 4096)
    digest = "sha512:" + hashlib.sha512(source.read_bytes()).hexdigest()
    path = cloud_images.fetch(ImageSpec(f"file://{source}", digest=digest))
    assert path.read_bytes() == source.read_bytes()
    with pytest.raises(Exception, match="does not match its digest"):
        cloud_images.fetch(ImageSpec(f"file://{tmp_path / 'image.raw'}", digest=SHA512))


# --- yq ---------------------------------------------------------------------------------------


def test_yq_expressions_are_checked_when_read():
    (step,) = parse_config(
        "param:\n  S: true\nprovision:\n  - mode: yq\n    path: /etc/d.json\n"
        "    expression: .features.cdi = true | .features.snap = {{.Param.S}}\n"
    ).provision
    assert step.expression == ".features.cdi = true | .features.snap = true"
    err = error_of("provision:\n  - mode: yq\n    path: /etc/d.json\n    expression: del(.a)\n")
    assert "yq expression" in err.message and err.where == "l.yaml:4:17"


# --- the validate command ---------------------------------------------------------------------


def test_validate_exit_codes_json_and_nothing_written(tmp_path: Path, envdeck_home: Path, capsys):
    good = tmp_path / "good.yaml"
    good.write_text("containerd:\n  user: true\ncpus: 2\n")
    bad = tmp_path / "bad.yaml"
    bad.write_text("os: Darwin\n")
    assert main(["validate", str(good)]) == 0
    out = capsys.readouterr()
    assert "ok" in out.out and "built-in tiny guest" in out.out
    assert out.err.count("warning:") == 1 and "containerd" in out.err
    assert main(["validate", "--json", str(good), str(bad)]) == 2
    result = json.loads(capsys.readouterr().out)
    assert result[str(good)]["ok"] and len(result[str(good)]["warnings"]) == 1
    assert result[str(bad)]["error"]["where"] == f"{bad}:1:5"
    assert not envdeck_home.exists()


LIMA_MIRROR = Path("/work/.mirror/lima-vm+lima/repo")


@pytest.mark.skipif(not LIMA_MIRROR.exists(), reason="Lima's template library is not here")
def test_every_linux_template_of_lima_validates(tmp_path: Path):
    archive = subprocess.run(
        ["git", "-C", str(LIMA_MIRROR), "archive", "HEAD", "templates"],
        capture_output=True,
        check=True,
    )
    subprocess.run(["tar", "-x", "-C", str(tmp_path)], input=archive.stdout, check=True)
    library = tmp_path / "templates"
    files = sorted(str(p) for p in library.rglob("*.yaml"))
    env = {**os.environ, "LIMA_TEMPLATES_PATH": str(library), "ENVDECK_HOME": str(tmp_path / "h")}
    result = subprocess.run(
        [sys.executable, "-m", "envdeck.backend.cli.main", "validate", "--json", *files],
        capture_output=True,
        text=True,
        env=env,
    )
    report = json.loads(result.stdout)
    failed = {
        Path(f).relative_to(library).as_posix(): r["error"]
        for f, r in report.items()
        if not r["ok"]
    }
    not_linux = ("os: Darwin", "os: FreeBSD", "os: Windows", "vmType: wsl2", "limactl-url-")
    assert all(any(w in e["message"] for w in not_linux) for e in failed.values()), failed
    assert len(report) - len(failed) >= 90
