"""Hostile instance YAML: one ConfigError with file:line:col and a hint, never a traceback."""

from __future__ import annotations

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from envdeck.backend.cli.main import main
from envdeck.backend.config import ConfigError, parse_config


def error_of(text: str) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        parse_config(text, "x.yaml")
    assert info.value.hint and info.value.exit_code == 2
    return info.value


def test_deep_nesting_is_refused_with_its_position():
    err = error_of("cpus: " + "[" * 20000 + "]" * 20000 + "\n")
    assert "nested deeper" in err.message and err.where.startswith("x.yaml:1:")


def test_block_nesting_is_refused_too():
    text = "".join(" " * i + "a:\n" for i in range(200))
    assert "nested deeper" in error_of(text).message


@pytest.mark.parametrize("key", ["memory", "disk"])
def test_a_huge_size_is_an_error_not_an_overflow(key: str):
    err = error_of(f"{key}: {'9' * 400}GiB\n")
    assert err.where == "x.yaml:1:" + str(len(key) + 3)


def test_memory_is_bounded_by_the_host_ram():
    err = error_of("memory: 100000GiB\n")
    assert "more than this host's RAM" in err.message and err.where == "x.yaml:1:9"


def test_cli_memory_overflow_exits_2(envdeck_home, capsys):
    assert main(["create", "big", "--memory", "9" * 400 + "GiB"]) == 2
    assert "RAM" in capsys.readouterr().err


@pytest.mark.parametrize("written", ["010", "0x10", "1:20", "+5", "1_0"])
def test_integers_are_plain_decimal(written: str):
    err = error_of(f"cpus: {written}\n")
    assert err.where == "x.yaml:1:7" and "plain decimal" in err.hint


def test_cpus_010_is_not_read_as_8():
    assert "would read as 8" in error_of("cpus: 010\n").message
    assert parse_config("cpus: 10\n").cpus == 10


def test_arch_with_a_kernel_names_the_kernel(tmp_path):
    (tmp_path / "vmlinuz").write_bytes(b"k")
    with pytest.raises(ConfigError) as info:
        parse_config("arch: aarch64\nkernel:\n  path: vmlinuz\n", "x.yaml", tmp_path)
    assert "custom kernel" in info.value.message and "tiny" not in info.value.message
    assert info.value.where == "x.yaml:1:7"


def test_guest_ip_is_honoured_or_refused():
    ok = "portForwards:\n  - guestPort: 80\n    guestIP: {}\n"
    assert parse_config(ok.format("127.0.0.1")).port_forwards[0].guest_port_range == (80, 80)
    assert parse_config(ok.format("0.0.0.0")).port_forwards
    err = error_of(ok.format("192.168.5.15"))
    assert err.where == "x.yaml:3:14" and "not supported" in err.message


def test_provision_as_user_is_kept_as_user_mode_not_root():
    (step,) = parse_config("provision:\n  - mode: user\n    script: id\n").provision
    assert step.mode == "user"


@pytest.mark.parametrize("text", ["cpus: null\n", "cpus:\n", "accel: ~\n"])
def test_null_means_the_default_as_in_lima(text: str):
    assert parse_config(text) == parse_config("")


def test_a_wrong_value_is_printed_as_written():
    err = error_of("cpus: true\n")
    assert "cpus is true" in err.message and "True" not in str(err)


@pytest.mark.parametrize("path", ["../important.txt", "a/../../b.sock", "~/../x"])
def test_host_socket_may_not_leave_the_instance_dir(path: str):
    if path.startswith("~"):  # expands to an absolute path: the user's choice
        parse_config(f"portForwards:\n  - guestSocket: /g\n    hostSocket: {path}\n")
        return
    err = error_of(f"portForwards:\n  - guestSocket: /g\n    hostSocket: {path}\n")
    assert err.where == "x.yaml:3:17" and "leaves the instance" in err.message


# --- fuzz: generated YAML-ish documents, only ConfigError, never a hang ----------------------

KEYS = [
    "template", "arch", "cpus", "memory", "disk", "accel", "kernel", "images", "ssh",
    "portForwards", "provision", "guestPort", "guestPortRange", "hostPort", "hostIP", "guestIP",
    "guestSocket", "hostSocket", "ignore", "proto", "path", "initrd", "cmdline", "mode", "script",
    "localPort", "location", "digest", "x",
]  # fmt: skip
TOKENS = [
    *KEYS, ": ", ":", "\n", "\n  ", "\n    ", "- ", "[", "]", "{", "}", ",", "&a ", "*a", "!!str ",
    "!!binary ", "!!python/object ", "'", '"', "#", "~", "null", "true", "010", "0x1F", "1:20",
    "9" * 60, "GiB", "MiB", "-1", ".inf", ".nan", "1e999", "sha256:", "ab" * 32, "../x", "%",
    "\t", "\\", "\x00", "\ufeff", "---", "...", "? ", "|", ">", "<<: *a", "!", "@", "`",
]  # fmt: skip

yamlish = st.lists(st.sampled_from(TOKENS), max_size=60).map("".join)
scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=20),
    st.sampled_from(["512MiB", "9" * 400 + "GiB", "x86_64", "aarch64", "tcg", "tiny", "user"]),
)  # fmt: skip
structured = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.sampled_from(KEYS), inner, max_size=5)
    ),
    max_leaves=25,
)


def only_config_errors(text: str) -> None:
    try:
        parse_config(text, "f.yaml")
    except ConfigError as err:
        assert err.where and err.where.startswith("f.yaml") and err.hint


@settings(max_examples=3000, deadline=2000, suppress_health_check=[HealthCheck.too_slow])
@given(yamlish)
def test_fuzz_yamlish_text(text: str):
    only_config_errors(text)


@settings(max_examples=2000, deadline=2000, suppress_health_check=[HealthCheck.too_slow])
@given(structured)
def test_fuzz_structured_documents(doc):
    only_config_errors(yaml.safe_dump(doc, allow_unicode=True))


@settings(max_examples=300, deadline=5000)
@given(st.integers(1, 5000), st.sampled_from(["[", "{a: ", "- ", "a:\n  "]))
def test_fuzz_nesting_depths(depth: int, opener: str):
    only_config_errors("cpus: " + opener * depth)
