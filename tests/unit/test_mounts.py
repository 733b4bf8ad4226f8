"""Lima ``mounts:``: parsing, the errors (file:line:col + how to fix), and what reaches QEMU,
the tiny guest's command line and a cloud image's seed."""

from __future__ import annotations

import os
from pathlib import Path

import asyncssh
import pytest
import yaml

from envdeck.backend.config import ConfigError, InstanceConfig, check_config, parse_config
from envdeck.backend.config.mounts import Mount
from envdeck.backend.images import seed
from envdeck.backend.store import InstanceDir
from envdeck.backend.vm import mounts as vm_mounts


def error_of(text: str) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        parse_config(text, "m.yaml")
    assert info.value.hint and info.value.exit_code == 2
    return info.value


def test_defaults_and_9p_options(tmp_path: Path):
    cfg = parse_config(
        f"mounts:\n  - location: {tmp_path}\n    mountPoint: /mnt/a\n"
        f"  - location: {tmp_path}\n    mountPoint: /mnt/b\n    writable: true\n"
        "    9p:\n      securityModel: mapped-xattr\n      msize: 256KiB\n      cache: loose\n",
        "m.yaml",
    )
    ro, rw = cfg.mounts
    assert (ro.location, ro.mount_point, ro.writable, ro.cache_mode) == (
        tmp_path,
        "/mnt/a",
        False,
        "fscache",
    )
    assert (rw.writable, rw.security_model, rw.msize, rw.cache_mode) == (
        True,
        "mapped-xattr",
        256 << 10,
        "loose",
    )


def test_home_and_variables_in_location(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    (tmp_path / "src").mkdir()
    monkeypatch.setenv("HOME", str(tmp_path))
    for location in ("~/src", "'{{.Home}}/src'"):
        (mount,) = parse_config(
            f"mounts:\n  - location: {location}\n    mountPoint: /mnt/src\n", "m.yaml"
        ).mounts
        assert mount.location == tmp_path / "src"
    (default,) = parse_config("mounts:\n  - location: ~/src\n", "m.yaml").mounts
    assert default.mount_point == str(tmp_path / "src")  # Lima: the location's own path


@pytest.mark.parametrize(
    ("entry", "where", "words", "hint"),
    [
        ("  - mountPoint: /mnt/x\n", "m.yaml:2:5", "no location", "location:"),
        ("  - location: rel/dir\n", "m.yaml:2:15", "relative path", "absolute"),
        ("  - location: /nowhere/at/all\n", "m.yaml:2:15", "does not exist", "mkdir -p"),
        ("  - location: {dir}/../x\n", "m.yaml:2:15", "'..'", "without '..'"),
        ("  - location: {file}\n", "m.yaml:2:15", "not a directory", "directory"),
        ("  - location: {dir}\n    mountPoint: mnt\n", "m.yaml:3:17", "not an absolute", "/mnt"),
        ("  - location: {dir}\n    mountPoint: /etc\n", "m.yaml:3:17", "would hide", "elsewhere"),
        ("  - location: {dir}\n    9p:\n      size: 1\n", "m.yaml:4:7", "unknown key", "msize"),
        (
            "  - location: {dir}\n    9p:\n      cache: fast\n",
            "m.yaml:4:14",
            "cache is 'fast'",
            "mmap",
        ),
        ("  - location: {dir}\n    9p:\n      msize: 1KiB\n", "m.yaml:4:14", "1024", "4KiB"),
        (
            "  - location: {dir}\n    mountPoint: /mnt/x\n"
            "  - location: {dir}\n    mountPoint: /mnt/x\n",
            "m.yaml:4:5",
            "mounted twice (first at m.yaml:2:5)",
            "one entry",
        ),
    ],
)
def test_bad_entries_are_one_clear_error(
    tmp_path: Path, entry: str, where: str, words: str, hint: str
):
    (tmp_path / "file").write_text("")
    error = error_of("mounts:\n" + entry.format(dir=tmp_path, file=tmp_path / "file"))
    assert error.where == where and words in error.message and hint in (error.hint or "")


def test_a_default_mount_point_on_root_home_is_a_warning_not_a_mount():
    checked = check_config("mounts:\n  - location: /root\n", "m.yaml")
    assert checked.config.mounts == ()
    (line,) = checked.warnings
    assert line.startswith("m.yaml:2:5: ") and "not mounted" in line and "mountPoint" in line


@pytest.mark.parametrize("kind", ["virtiofs", "reverse-sshfs"])
def test_other_mount_types_are_served_over_9p_with_one_warning(tmp_path: Path, kind: str):
    checked = check_config(
        f"mountType: {kind}\nmounts:\n  - location: {tmp_path}\n    mountPoint: /mnt/x\n",
        "m.yaml",
    )
    (line,) = checked.warnings
    assert f"mountType: {kind} is served over 9p" in line and len(checked.config.mounts) == 1
    assert check_config("mountType: 9p\n", "m.yaml").warnings == ()
    assert "use one of" in (error_of("mountType: nfs\n").hint or "")


def test_a_base_entry_with_the_same_mount_point_is_combined(tmp_path: Path):
    (tmp_path / "base.yaml").write_text(
        f"mounts:\n  - location: {tmp_path}\n    mountPoint: /mnt/x\n    9p:\n      cache: none\n"
    )
    (tmp_path / "top.yaml").write_text(
        f"base: base.yaml\nmounts:\n  - location: {tmp_path}\n    mountPoint: /mnt/x\n"
        "    writable: true\n"
    )
    text = (tmp_path / "top.yaml").read_text()
    (mount,) = parse_config(text, str(tmp_path / "top.yaml"), tmp_path).mounts
    assert (mount.writable, mount.cache_mode) == (True, "none")


def test_shares_resolve_a_symlinked_location_and_keep_tags_stable(tmp_path: Path):
    real = tmp_path / "real"
    real.mkdir()
    (tmp_path / "link").symlink_to(real)
    cfg = InstanceConfig(
        mounts=(
            Mount(tmp_path / "link", "/mnt/link"),
            Mount(real, "/mnt/a b:c", writable=True),
        )
    )
    inst = InstanceDir("m", tmp_path / "inst")
    link, spaced = vm_mounts.shares_for(cfg, inst)
    assert (link.tag, link.host_path, link.writable) == ("mount0", real, False)
    assert spaced.tag == "mount1" and len(spaced.tag.encode()) <= 31
    argv = vm_mounts.mount_argv((link, spaced), pci=False)
    assert argv[1] == f"local,id=fs0,path={real},security_model=none,readonly=on"
    assert argv[3] == "virtio-9p-device,fsdev=fs0,mount_tag=mount0"
    assert "readonly" not in argv[5]
    assert vm_mounts.kernel_args((link, spaced)) == (
        " envdeck.mount=mount0:ro,trans=virtio,version=9p2000.L,msize=131072,cache=fscache:"
        "/mnt/link"
        " envdeck.mount=mount1:rw,trans=virtio,version=9p2000.L,msize=131072,cache=mmap:"
        "/mnt/a%20b%3Ac"
    )
    os.rmdir(real)
    with pytest.raises(Exception, match="not a directory now"):
        vm_mounts.shares_for(cfg, inst)


def test_cloud_seed_mounts_at_every_boot_and_keeps_the_pinned_key(tmp_path: Path):
    key = asyncssh.generate_private_key("ssh-ed25519").export_private_key()
    share = vm_mounts.Share("mount0", tmp_path, mount_point="/mnt/it's here")
    text = seed.user_data("m", "ssh-ed25519 AAAA", key, bootcmd=vm_mounts.cloud_bootcmd((share,)))
    doc = yaml.safe_load(text.removeprefix("#cloud-config\n"))
    (line,) = doc["bootcmd"]
    assert "mount -t 9p -o ro,trans=virtio" in line and "'/mnt/it'\"'\"'s here'" in line
    assert doc["ssh_genkeytypes"] == [] and doc["ssh_keys"]["ed25519_private"] == key.decode()
    assert "bootcmd" not in seed.user_data("m", "ssh-ed25519 AAAA", key)
