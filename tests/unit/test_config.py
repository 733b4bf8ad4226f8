"""Instance YAML validation: defaults, errors with file:line:col, and a fuzz test."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from envdeck.backend.config import (
    ConfigError,
    InstanceConfig,
    format_size,
    load_config,
    parse_config,
    parse_size,
    render_config,
)


def error_of(text: str) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        parse_config(text, "inst.yaml")
    return info.value


def test_empty_document_gives_tiny_defaults():
    assert parse_config("") == InstanceConfig()
    assert InstanceConfig().template == "tiny"


def test_rendered_config_round_trips():
    text = render_config(cpus=2, memory_bytes=768 << 20, disk_bytes=3 << 30, accel="tcg")
    cfg = parse_config(text)
    assert (cfg.cpus, cfg.memory_bytes, cfg.disk_bytes, cfg.accel) == (2, 768 << 20, 3 << 30, "tcg")


@pytest.mark.parametrize(
    "text, size",
    [("512MiB", 512 << 20), ("2G", 2 << 30), ("1.5GiB", 3 << 29), (4096, 4096), ("1024", 1024)],
)
def test_parse_size(text, size):
    assert parse_size(text) == size


@pytest.mark.parametrize("bad", ["lots", "-1G", "0", "", "12XB", True])
def test_parse_size_rejects(bad):
    with pytest.raises(ValueError):
        parse_size(bad)


def test_format_size():
    assert format_size(512 << 20) == "512MiB"
    assert format_size(1000) == "1000B"


@pytest.mark.parametrize(
    "text, where, words",
    [
        ("cpus: 1\nmemroy: 1G\n", "inst.yaml:2:1", "unknown key 'memroy'"),
        ("memory: lots\n", "inst.yaml:1:9", "memory is 'lots'"),
        ("cpus: 0\n", "inst.yaml:1:7", "cpus is 0"),
        ("cpus: two\n", "inst.yaml:1:7", "cpus is 'two'"),
        ("arch: mips\n", "inst.yaml:1:7", "arch is 'mips'"),
        ("cpus: 1\ncpus: 2\n", "inst.yaml:2:1", "duplicate key"),
        ("kernel:\n  path: /nonexistent/vmlinuz\n", "inst.yaml:2:9", "does not exist"),
        ("portForwards:\n  - hostPort: 80\n", "inst.yaml:2:5", "needs guestPort"),
        (
            "portForwards:\n  - guestPort: 80\n    hostIP: everywhere\n",
            "inst.yaml:3:13",
            "not an IP",
        ),
        ("memory: [1, 2]\n", "inst.yaml:1:9", "single value"),
        ("cpus: 1\n  bad: indent\n", "inst.yaml:2:6", "not valid YAML"),
        ("- a\n- b\n", "inst.yaml:1:1", "must be a mapping"),
        ("memory: 1MiB\n", "inst.yaml:1:9", "too small"),
    ],
)
def test_errors_name_file_line_column_and_hint(text, where, words):
    err = error_of(text)
    assert err.where == where, str(err)
    assert words in err.message
    assert err.hint
    assert err.exit_code == 2


def test_unknown_key_suggests_the_close_one():
    assert "did you mean 'memory'" in error_of("memroy: 1G\n").hint


def test_forward_rules_default_to_loopback(tmp_path: Path):
    cfg = parse_config(
        "portForwards:\n  - guestPort: 80\n    hostPort: 8080\n"
        "  - guestSocket: /run/a.sock\n    hostSocket: a.sock\n"
    )
    web, sock = cfg.port_forwards
    assert (
        web.host_ip == "127.0.0.1"
        and web.guest_port_range == (80, 80)
        and web.host_port_range == (8080, 8080)
    )
    assert sock.guest_socket == "/run/a.sock"


def test_kernel_paths_are_relative_to_the_file(tmp_path: Path):
    (tmp_path / "vmlinuz").write_bytes(b"k")
    path = tmp_path / "inst.yaml"
    path.write_text("kernel:\n  path: vmlinuz\n")
    cfg = load_config(path)
    assert cfg.kernel is not None and cfg.kernel.path == tmp_path / "vmlinuz"
    assert cfg.template is None


def test_missing_file_is_a_config_error(tmp_path: Path):
    with pytest.raises(ConfigError):
        load_config(tmp_path / "nope.yaml")


# --- fuzz: whatever the document, the only failure is a ConfigError with a position ---------

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**40), 2**40),
    st.floats(allow_nan=False),
    st.text(max_size=12),
    st.sampled_from(["512MiB", "2G", "lots", "x86_64", "tcg", "tiny", "0"]),
)
keys = st.sampled_from(
    [
        "template",
        "arch",
        "cpus",
        "memory",
        "disk",
        "accel",
        "kernel",
        "ssh",
        "portForwards",
        "provision",
        "images",
        "guestPort",
        "hostIP",
        "path",
        "mode",
        "script",
        "localPort",
        "location",
        "digest",
        "bogus",
    ]
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(keys, inner, max_size=4)),
    max_leaves=12,
)
documents = st.one_of(st.dictionaries(keys, values, max_size=6), values)


@settings(max_examples=2000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(documents)
def test_fuzz_structured_documents_only_raise_config_error(doc):
    text = yaml.safe_dump(doc)
    try:
        parse_config(text, "fuzz.yaml")
    except ConfigError as err:
        assert err.where and err.where.startswith("fuzz.yaml")
        assert err.hint


@settings(max_examples=1000, deadline=None)
@given(st.text(max_size=80))
def test_fuzz_raw_text_only_raises_config_error(text):
    try:
        parse_config(text, "raw.yaml")
    except ConfigError as err:
        assert err.where.startswith("raw.yaml")


def test_cpu_type_per_arch_as_lima_writes_it():
    cfg = parse_config("cpuType:\n  aarch64: cortex-a72\n  x86_64: null\n  riscv64: ''\n")
    assert cfg.cpu_type == {"aarch64": "cortex-a72"}
    with pytest.raises(ConfigError) as bad:
        parse_config("cpuType:\n  aarch64: 'max -device evil'\n", "i.yaml")
    assert "i.yaml:2:12" in str(bad.value.where) and "not a QEMU CPU model" in bad.value.message
    with pytest.raises(ConfigError, match="mips"):
        parse_config("cpuType:\n  mips: x\n")
