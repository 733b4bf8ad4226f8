"""Lima ``mounts:``: parsing, the errors (file:line:col + how to fix), and what reaches QEMU,
the tiny guest's command line and a cloud image's seed."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import asyncssh
import pytest
import yaml

from envdeck.backend.config import ConfigError, InstanceConfig, check_config, parse_config
from envdeck.backend.config.mounts import WRITABLE_HOME, Mount
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
    share = vm_mounts.Share("mount0", tmp_path, Mount(tmp_path, "/mnt/it's here"))
    text = seed.user_data("m", "ssh-ed25519 AAAA", key, bootcmd=vm_mounts.cloud_bootcmd((share,)))
    doc = yaml.safe_load(text.removeprefix("#cloud-config\n"))
    first, line = doc["bootcmd"]
    assert "modprobe -q 9pnet_virtio" in first and vm_mounts.MOUNT_ERRORS in first
    assert "mount -t 9p -o ro,trans=virtio" in line and "'/mnt/it'\"'\"'s here'" in line
    assert f">> {vm_mounts.MOUNT_ERRORS}" in line and "/dev/console" in line
    assert doc["ssh_genkeytypes"] == [] and doc["ssh_keys"]["ed25519_private"] == key.decode()
    assert "bootcmd" not in seed.user_data("m", "ssh-ed25519 AAAA", key)


def test_mount_problems_name_the_share_and_what_mount_said(tmp_path: Path):
    mounts = (
        Mount(tmp_path / "ok", "/mnt/a b"),
        Mount(tmp_path / "file", "/etc/hostname"),
        Mount(tmp_path / "quiet", "/mnt/q"),
    )
    table = (
        "rootfs / rootfs rw 0 0\n"
        "mount0 /mnt/a\\040b 9p ro,relatime,cache=fscache,access=client,trans=virtio 0 0\n"
        "mount2 /mnt/other 9p ro,trans=virtio 0 0\n"  # not where it belongs
    )
    noted = "mount1\tmkdir: can't create directory '/etc/hostname': File exists\x1b[2J\n"
    out = f"{table}{vm_mounts.ERRORS_MARK}\n{noted}"
    one, two = vm_mounts.mount_problems(mounts, out)
    assert one == (
        f"{tmp_path / 'file'} is not mounted at /etc/hostname (mount1):"
        " mkdir: can't create directory '/etc/hostname': File exists\\e[2J"
    )
    assert two.endswith("/mnt/q (mount2): not in the guest's mount table")
    assert vm_mounts.mount_problems(mounts[:1], table + vm_mounts.ERRORS_MARK + "\n") == []


def test_a_guest_kernel_without_9p_is_said_with_what_to_do(tmp_path: Path):
    said = "mount0\tmount: /mnt/a: unknown filesystem type '9p'.\n"
    (problem,) = vm_mounts.mount_problems(
        (Mount(tmp_path, "/mnt/a"),), f"{vm_mounts.ERRORS_MARK}\n{said}"
    )
    assert "unknown filesystem type '9p'" in problem and "linux-image-amd64" in problem


def test_the_docker_template_shares_the_home_read_only_at_the_same_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    checked = check_config("template: docker\n", "d.yaml")
    assert checked.config.mounts == (Mount(home, str(home), writable=False),)
    assert checked.warnings == ()
    # the file's own mounts: replace the default (an empty list: nothing shared)
    assert check_config("template: docker\nmounts: []\n", "d.yaml").config.mounts == ()
    own = check_config(f"template: docker\nmounts:\n  - location: {tmp_path}\n", "d.yaml")
    assert [m.location for m in own.config.mounts] == [tmp_path]
    assert check_config("template: tiny\n", "d.yaml").config.mounts == ()
    # create --mount-writable: the same home, writable
    writable = check_config("template: docker\n" + WRITABLE_HOME, "d.yaml").config.mounts
    assert writable == (Mount(home, str(home), writable=True),)


def test_the_docker_template_as_root_does_not_hide_root_and_says_so(
    monkeypatch: pytest.MonkeyPatch,
):
    monkeypatch.setenv("HOME", "/root")
    checked = check_config("arch: x86_64\ntemplate: docker\n", "d.yaml")
    assert checked.config.mounts == ()
    (line,) = checked.warnings
    assert line.startswith("d.yaml:2:1: template: docker shares your home read-only")
    assert "/root is not mounted" in line and "envdeck's SSH key" in line
    assert "mounts:" in line


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--mount-writable"], "the tiny template mounts nothing"),
        (["--template", "docker", "--mount-writable", "-f", "x.yaml"], "exclude each other"),
    ],
)
def test_create_mount_writable_refuses_what_it_cannot_do(
    envdeck_home: Path, args: list[str], words: str
):
    result = subprocess.run(
        [sys.executable, "-m", "envdeck.backend.cli.main", "create", "w", *args],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 2 and words in result.stderr and "hint" in result.stderr.lower()
    assert not (envdeck_home / "instances" / "w").exists()
