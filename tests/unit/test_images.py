"""Tiny image pieces that run without QEMU: host-key conversion, the per-instance initrd, the
cache key, module ordering, ELF reading and the apt resolution memo."""

from __future__ import annotations

import base64
import gzip
import io
import json
import lzma
import os
import stat
import struct
import subprocess
import sys
from pathlib import Path

import asyncssh
import pytest

from envdeck.backend.errors import UserInputError
from envdeck.backend.images import tiny as images_tiny
from envdeck.backend.images.cpio import NewcWriter, read_newc
from envdeck.backend.images.debs import Deb
from envdeck.backend.images.elf import (
    NotElf,
    has_pvh_entry,
    interpreter,
    needed_libraries,
    vmlinux_from_bzimage,
)
from envdeck.backend.images.initramfs import (
    GUEST_HOST_KEY,
    TinyImage,
    dropbear_ed25519_key,
    instance_initrd,
)
from envdeck.backend.images.rootfs import GUEST_FILES, guest_files, module_closure_of
from envdeck.backend.images.tiny import compute_digest
from tests.conftest import require_tool


@pytest.fixture(scope="module")
def host_key() -> asyncssh.SSHKey:
    return asyncssh.generate_private_key("ssh-ed25519")


def test_dropbear_key_layout(host_key):
    raw = dropbear_ed25519_key(host_key.export_private_key("openssh"))
    buf = io.BytesIO(raw)
    assert buf.read(4) == (11).to_bytes(4, "big") and buf.read(11) == b"ssh-ed25519"
    assert buf.read(4) == (64).to_bytes(4, "big")
    secret = buf.read(64)
    assert buf.read() == b""
    # the second half is the public key the client will pin
    public_blob = host_key.export_public_key("openssh").split()[1]
    pinned = asyncssh.import_public_key(b"ssh-ed25519 " + public_blob)
    assert secret[32:] == pinned.public_data[-32:]


def test_dropbear_key_matches_dropbearconvert(host_key, tmp_path: Path):
    require_tool("dropbearconvert")
    src, dst = tmp_path / "openssh", tmp_path / "dropbear"
    src.write_bytes(host_key.export_private_key("openssh"))
    src.chmod(0o600)
    subprocess.run(
        ["dropbearconvert", "openssh", "dropbear", str(src), str(dst)],
        capture_output=True, check=True,
    )  # fmt: skip
    assert dropbear_ed25519_key(src.read_bytes()) == dst.read_bytes()


def test_encrypted_or_wrong_keys_are_refused(host_key):
    def string(b: bytes) -> bytes:
        return len(b).to_bytes(4, "big") + b

    # what an encrypted key starts with (asyncssh cannot write one without bcrypt)
    blob = b"openssh-key-v1\0" + string(b"aes256-ctr") + string(b"bcrypt") + string(b"salt")
    armored = b"-----BEGIN OPENSSH PRIVATE KEY-----\n" + base64.b64encode(blob) + b"\n-----END"
    with pytest.raises(UserInputError, match="encrypted"):
        dropbear_ed25519_key(armored)
    rsa = asyncssh.generate_private_key("ssh-rsa", key_size=1024)
    with pytest.raises(UserInputError, match="ed25519"):
        dropbear_ed25519_key(rsa.export_private_key("openssh"))
    with pytest.raises(UserInputError):
        dropbear_ed25519_key(b"-----BEGIN OPENSSH PRIVATE KEY-----\n!!!\n")


def _base_image(tmp_path: Path) -> TinyImage:
    buf = io.BytesIO()
    with NewcWriter(buf) as cpio:
        cpio.add_dir("etc")
        cpio.add_file("etc/hostname", b"base\n")
        cpio.add_file("etc/odd", b"x")  # leaves the archive length unaligned before the trailer
    initrd = tmp_path / "base.img"
    initrd.write_bytes(buf.getvalue() + b"\0\0")  # a base whose length is not a multiple of 4
    return TinyImage(tmp_path / "vmlinuz", initrd, "d" * 64, "6.1.0-test")


def test_instance_initrd_appends_the_instance_files(host_key, tmp_path: Path):
    image = _base_image(tmp_path)
    dest = tmp_path / "inst" / "initrd.img"
    dest.parent.mkdir()
    extra = {"/etc/envdeck/rc.d/10-hello": b"#!/bin/sh\necho hi\n", "opt/data.txt": b"plain"}
    instance_initrd(
        image, dest, host_key=host_key.export_private_key("openssh"),
        authorized_keys="ssh-ed25519 AAAA test\n", hostname="box1", extra_files=extra,
    )  # fmt: skip
    assert stat.S_IMODE(dest.stat().st_mode) == 0o600
    data = dest.read_bytes()
    base = image.initrd.read_bytes()
    assert data.startswith(base)
    assert data.index(b"070701", len(base)) % 4 == 0  # the appended archive is 4-byte aligned
    entries = list(read_newc(data))
    names = [e.name for e in entries]
    assert names[:2] == ["etc", "etc/hostname"]  # base first ...
    last = {e.name: e for e in entries}  # ... later entries win, as in the kernel
    assert last["etc/hostname"].data == b"box1\n"
    assert last["root/.ssh/authorized_keys"].data == b"ssh-ed25519 AAAA test\n"
    assert stat.S_IMODE(last["root/.ssh/authorized_keys"].mode) == 0o600
    assert stat.S_IMODE(last["root/.ssh"].mode) == 0o700
    assert last[GUEST_HOST_KEY].data == dropbear_ed25519_key(host_key.export_private_key("openssh"))
    assert stat.S_IMODE(last[GUEST_HOST_KEY].mode) == 0o600
    assert stat.S_IMODE(last["etc/envdeck/rc.d/10-hello"].mode) == 0o755
    assert stat.S_IMODE(last["opt/data.txt"].mode) == 0o644
    # the kernel does not create parents: each directory comes before what is in it
    for i, name in enumerate(names):
        parts = name.split("/")
        for depth in range(1, len(parts)):
            assert "/".join(parts[:depth]) in names[:i], name


def _deb(name: str, sha: str = "0" * 64) -> Deb:
    return Deb(name, "1.0", "amd64", sha, 10)


def test_digest_is_stable_and_covers_debs_and_scripts():
    scripts = guest_files()
    debs = [_deb("busybox-static"), _deb("libc6")]
    one = compute_digest(debs, scripts)
    assert one == compute_digest(list(reversed(debs)), dict(reversed(scripts.items())))
    assert len(one) == 64
    assert one != compute_digest([_deb("busybox-static", "1" * 64), _deb("libc6")], scripts)
    changed = dict(scripts, rcS=scripts["rcS"] + b"\n# changed\n")
    assert one != compute_digest(debs, changed)


def test_guest_files_are_all_shipped():
    assert set(guest_files()) == set(GUEST_FILES)
    assert guest_files()["init"].startswith(b"#!/bin/busybox sh\n")
    assert b"envdeck-stage: init" in guest_files()["init"]
    for marker in (b"envdeck-stage: network", b"envdeck-stage: sshd"):
        assert marker in guest_files()["rcS"]


def test_module_order_puts_dependencies_first():
    deps = {"virtio_net": ["virtio", "net_failover"], "net_failover": ["failover"],
            "virtio": ["virtio_ring"], "virtio_blk": ["virtio", "virtio_ring"]}  # fmt: skip
    order = module_closure_of(["virtio_net", "virtio_blk"], lambda n: deps.get(n, []))
    assert sorted(order) == sorted(
        ["virtio_ring", "virtio", "failover", "net_failover", "virtio_net", "virtio_blk"]
    )
    for mod, needs in deps.items():
        assert all(order.index(d) < order.index(mod) for d in needs)


def test_elf_reader_on_a_real_binary():
    python = Path(sys.executable).resolve().read_bytes()
    needed = needed_libraries(python)
    assert any(n.startswith("libc.so") for n in needed) or any("python" in n for n in needed)
    assert interpreter(python) and interpreter(python).startswith("/")
    with pytest.raises(NotElf):
        needed_libraries(b"#!/bin/sh\n")


def test_deb_filename_quotes_the_epoch():
    deb = Deb("busybox-static", "1:1.35.0-4", "amd64", "0" * 64, 1)
    assert deb.filename == "busybox-static_1%3a1.35.0-4_amd64.deb"


def test_resolution_memo_is_used_while_apt_lists_are_unchanged(tmp_path, monkeypatch):
    lists = tmp_path / "lists"
    lists.mkdir()
    (lists / "x_Packages").write_text("Package: x\n")
    monkeypatch.setattr(images_tiny, "APT_LISTS", lists)
    monkeypatch.setattr(images_tiny, "DPKG_STATUS", tmp_path / "status")
    monkeypatch.setenv("ENVDECK_CACHE", str(tmp_path / "cache"))
    fingerprint = images_tiny.apt_fingerprint()
    assert fingerprint
    memo = {"fingerprint": fingerprint, "kernel": "linux-image-9-amd64",
            "debs": [vars(_deb("linux-image-9-amd64"))]}  # fmt: skip
    (tmp_path / "cache" / "tiny").mkdir(parents=True)
    (tmp_path / "cache" / "tiny" / "resolved.json").write_text(json.dumps(memo))
    packages, kernel = images_tiny.resolve_packages()
    assert kernel == "linux-image-9-amd64" and packages == [_deb("linux-image-9-amd64")]
    (lists / "x_Packages").write_text("Package: x\nVersion: 2\n")  # apt-get update happened
    assert images_tiny.apt_fingerprint() != fingerprint


def test_incomplete_cache_entries_are_not_loaded(tmp_path, monkeypatch):
    monkeypatch.setenv("ENVDECK_CACHE", str(tmp_path))
    entry = tmp_path / "tiny" / ("a" * 64)
    entry.mkdir(parents=True)
    (entry / "initrd.img").write_bytes(b"")
    assert images_tiny.load("a" * 64) is None  # no meta.json: not complete
    (entry / "meta.json").write_text(json.dumps({"kernel_version": "6.1"}))
    assert images_tiny.load("a" * 64).kernel_version == "6.1"
    assert images_tiny.latest().digest == "a" * 64


def test_cmdline_has_the_serial_console_and_tcg_gets_the_host_tsc_rate():
    from envdeck.backend.images.initramfs import TINY_CMDLINE
    from envdeck.backend.vm.accel import host_tsc_khz, tcg_kernel_args

    words = TINY_CMDLINE.split()
    assert "console=ttyS0" in words and "loglevel=5" in words  # warnings and errors shown
    khz = host_tsc_khz()
    assert khz is not None and 100_000 < khz < 10_000_000  # this x86_64 host: 0.1 .. 10 GHz
    assert tcg_kernel_args("x86_64").split() == ["tsc=reliable", f"tsc_early_khz={khz}"]
    assert tcg_kernel_args("aarch64") == ""


def _elf_with_note(name: bytes, ntype: int) -> bytes:
    """A minimal ELF64 with one PT_NOTE program header holding one note."""
    note = struct.pack("<III", len(name) + 1, 4, ntype) + name + b"\0" * (4 - len(name) % 4)
    note += b"\0\0\0\0"
    ehdr = b"\x7fELF\x02\x01\x01" + b"\0" * 9 + struct.pack("<HHIQQQIHHHHHH",
        2, 62, 1, 0, 64, 0, 0, 64, 56, 1, 64, 0, 0)  # fmt: skip
    phdr = struct.pack("<IIQQQQQQ", 4, 4, 120, 0, 0, len(note), len(note), 4)
    return ehdr + phdr + note


def test_pvh_note_is_found():
    assert has_pvh_entry(_elf_with_note(b"Xen", 18))
    assert not has_pvh_entry(_elf_with_note(b"Xen", 17))
    assert not has_pvh_entry(_elf_with_note(b"GNU", 18))


def _bzimage(payload: bytes) -> bytes:
    head = bytearray(1024)
    head[0x1F1] = 1  # one setup sector: protected-mode code at 2 * 512
    head[0x202:0x206] = b"HdrS"
    struct.pack_into("<II", head, 0x248, 16, len(payload))
    return bytes(head) + b"\0" * 16 + payload + b"\0" * 8


def test_vmlinux_is_unpacked_from_xz_and_gzip_bzimages():
    elf = _elf_with_note(b"Xen", 18) * 50
    assert vmlinux_from_bzimage(_bzimage(lzma.compress(elf, format=lzma.FORMAT_XZ))) == elf
    assert vmlinux_from_bzimage(_bzimage(gzip.compress(elf))) == elf
    assert vmlinux_from_bzimage(_bzimage(b"(\xb5/\xfd zstd")) is None
    assert vmlinux_from_bzimage(b"MZ not a kernel" * 100) is None


def test_prune_keeps_the_new_image_one_spare_and_the_debs_in_use(tmp_path):
    top = tmp_path / "tiny"
    for age, digest in enumerate(["c" * 64, "b" * 64, "a" * 64]):  # a is the oldest
        (top / digest).mkdir(parents=True)
        meta = top / digest / "meta.json"
        meta.write_text(json.dumps({"kernel_version": "6.1"}))
        os.utime(meta, (1000 - age, 1000 - age))
    (top / "debs").mkdir()
    (top / "debs" / "old_1_amd64.deb").write_bytes(b"")
    (top / "debs" / "new_2_amd64.deb").write_bytes(b"")
    images_tiny._prune(top, keep={"c" * 64}, debs_in_use={"new_2_amd64.deb"})
    assert sorted(p.name for p in top.iterdir() if p.name != "debs") == ["b" * 64, "c" * 64]
    assert [p.name for p in (top / "debs").iterdir()] == ["new_2_amd64.deb"]
