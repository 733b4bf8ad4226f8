"""Cloud images without QEMU: the images: config, fetch + digest + cache, the NoCloud seed, argv."""

from __future__ import annotations

import hashlib
from pathlib import Path

import asyncssh
import pytest
import yaml

from envdeck.backend.config import ConfigError, ImageSpec, parse_config
from envdeck.backend.errors import EnvdeckError, MissingTool
from envdeck.backend.images import cloud as cloud_images
from envdeck.backend.images import seed as cloud_seed
from envdeck.backend.vm.argv import MachineSpec, build_argv

DIGEST = "sha256:" + "ab" * 32


def test_images_config_lima_style():
    cfg = parse_config(
        "images:\n  - location: https://example.org/a.qcow2\n"
        f"    arch: x86_64\n    digest: {DIGEST}\n"
        "  - location: /srv/b.img\n"
    )
    assert cfg.template is None and cfg.kernel is None
    assert cfg.images == (
        ImageSpec("https://example.org/a.qcow2", "x86_64", DIGEST),
        ImageSpec("/srv/b.img"),
    )


def test_images_config_for_an_aarch64_guest_picks_its_image():
    cfg = parse_config(
        "arch: aarch64\nimages:\n  - location: /x\n    arch: x86_64\n"
        "  - location: /a\n    arch: aarch64\n"
    )
    assert cfg.arch == "aarch64" and cfg.images == (ImageSpec("/a", "aarch64"),)


@pytest.mark.parametrize(
    ("text", "where", "words"),
    [
        ("images:\n  - location: a.qcow2\n", "c.yaml:2:15", "not a URL"),
        ("images:\n  - location: /a\n    digest: md5:12\n", "c.yaml:3:13", "sha256"),
        ("images:\n  - arch: x86_64\n", "c.yaml:2:5", "needs a location"),
        ("images: []\n", "c.yaml:1:9", "empty"),
        ("template: tiny\nimages:\n  - location: /a\n", "c.yaml:2:1", "excludes"),
        (
            "images:\n  - location: /a\n    arch: aarch64\n",
            "c.yaml:2:3",
            "no image for arch x86_64",
        ),
    ],
)
def test_images_config_errors_point_at_the_node(text: str, where: str, words: str):
    with pytest.raises(ConfigError) as info:
        parse_config(text, "c.yaml")
    assert info.value.where == where and words in info.value.message and info.value.hint


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("ENVDECK_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def test_fetch_verifies_the_digest_caches_and_shows_progress(tmp_path: Path, cache: Path):
    source = tmp_path / "image.raw"
    data = b"\x00" * (3 << 20) + b"disk"
    source.write_bytes(data)
    good = ImageSpec(f"file://{source}", digest="sha256:" + hashlib.sha256(data).hexdigest())
    seen: list[float | None] = []
    path = cloud_images.fetch(good, lambda _text, fraction: seen.append(fraction))
    assert path.read_bytes() == data and path.parent == cache / "images"
    assert seen and seen[-1] == 1.0 and path.stat().st_mode & 0o777 == 0o600
    source.unlink()
    assert cloud_images.fetch(good) == path  # cached: the source is not read again

    bad = ImageSpec(str(tmp_path / "other.raw"), digest=DIGEST)
    (tmp_path / "other.raw").write_bytes(b"something else")
    with pytest.raises(EnvdeckError, match="does not match its digest"):
        cloud_images.fetch(bad)
    assert sorted(p.name for p in (cache / "images").iterdir()) == [
        path.name
    ]  # nothing half-written


def test_fetch_of_a_missing_image_says_so(tmp_path: Path, cache: Path):
    with pytest.raises(EnvdeckError, match="cannot"):
        cloud_images.fetch(ImageSpec(f"file://{tmp_path}/absent.img"))


def test_seed_carries_our_keys_and_nothing_generated(tmp_path: Path):
    host = asyncssh.generate_private_key("ssh-ed25519")
    client = asyncssh.generate_private_key("ssh-ed25519").export_public_key("openssh").decode()
    private = host.export_private_key("openssh")
    seed = tmp_path / "cidata.iso"
    cloud_seed.write_seed(
        seed,
        {
            "meta-data": cloud_seed.meta_data("envdeck-dev-1", "dev"),
            "user-data": cloud_seed.user_data("dev", client, private),
        },
    )
    files = cloud_seed.read_seed(seed)
    assert yaml.safe_load(files["meta-data"]) == {
        "instance-id": "envdeck-dev-1",
        "local-hostname": "dev",
    }
    assert files["user-data"].startswith("#cloud-config\n")
    doc = yaml.safe_load(files["user-data"])
    assert doc["ssh_authorized_keys"] == [client.strip()] and doc["disable_root"] is False
    assert doc["ssh_keys"]["ed25519_private"] == private.decode() and doc["ssh_genkeytypes"] == []
    assert doc["ssh_keys"]["ed25519_public"] == host.export_public_key("openssh").decode().strip()
    assert seed.stat().st_mode & 0o777 == 0o600
    assert (
        seed.read_bytes()[0x8000 + 40 : 0x8000 + 46] == b"cidata"
    )  # the volume label cloud-init looks for


def disk_spec(arch: str = "x86_64", firmware_code: str | None = "/fw/CODE.fd") -> MachineSpec:
    """A cloud image's machine: its disk, its seed, UEFI firmware unless ``firmware_code`` is
    None (firmware.legacyBIOS: QEMU's SeaBIOS)."""
    firmware = (Path(firmware_code), Path("/i/efivars.fd")) if firmware_code else None
    return MachineSpec(
        name="c",
        arch=arch,
        accel="tcg",
        cpus=2,
        memory_bytes=1 << 30,
        kernel=None,
        initrd=None,
        cmdline="",
        serial_socket=Path("/i/serial.sock"),
        qmp_socket=Path("/i/qmp.sock"),
        ssh_port=40022,
        disk=Path("/i/disk.qcow2"),
        firmware=firmware,
        seed=Path("/i/cidata.iso"),
    )


def test_uefi_argv_boots_the_disk_with_the_seed():
    argv = build_argv(disk_spec())
    joined = " ".join(argv)
    assert "-kernel" not in argv and argv[argv.index("-M") + 1] == "q35"
    assert argv[0] == "qemu-system-x86_64" and argv[argv.index("-cpu") + 1] == "max"
    assert "if=pflash,format=raw,unit=0,readonly=on,file=/fw/CODE.fd" in argv
    assert "if=pflash,format=raw,unit=1,file=/i/efivars.fd" in argv
    assert "virtio-blk-pci,drive=disk0,bootindex=0" in argv and "file=/i/cidata.iso" in joined
    assert "hostfwd=tcp:127.0.0.1:40022-:22" in joined


def test_uefi_argv_of_an_aarch64_guest_is_virt_with_pci_devices():
    argv = build_argv(disk_spec("aarch64", "/usr/share/AAVMF/AAVMF_CODE.fd"))
    assert argv[0] == "qemu-system-aarch64" and argv[argv.index("-M") + 1] == "virt"
    assert argv[argv.index("-cpu") + 1] == "cortex-a57"
    assert "if=pflash,format=raw,unit=0,readonly=on,file=/usr/share/AAVMF/AAVMF_CODE.fd" in argv
    assert "if=pflash,format=raw,unit=1,file=/i/efivars.fd" in argv
    devices = [argv[i + 1] for i, arg in enumerate(argv) if arg == "-device"]
    assert "virtio-blk-pci,drive=disk0,bootindex=0" in devices
    assert "virtio-net-pci,netdev=net0" in devices and "virtio-blk-pci,drive=seed" in devices


def _firmware_tree(root: Path, code: str, variables: str, size: int) -> None:
    for name in (code, variables):
        path = root / name.lstrip("/")
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("wb") as out:
            out.truncate(size)


def test_uefi_firmware_per_arch_first_pair_found(tmp_path: Path):
    _firmware_tree(tmp_path, "/usr/share/OVMF/OVMF_CODE.fd", "/usr/share/OVMF/OVMF_VARS.fd", 4096)
    _firmware_tree(
        tmp_path, "/usr/share/AAVMF/AAVMF_CODE.fd", "/usr/share/AAVMF/AAVMF_VARS.fd", 64 << 20
    )
    assert cloud_images.uefi_firmware("x86_64", tmp_path) == (
        tmp_path / "usr/share/OVMF/OVMF_CODE.fd",
        tmp_path / "usr/share/OVMF/OVMF_VARS.fd",
    )
    assert cloud_images.uefi_firmware("aarch64", tmp_path)[0] == (
        tmp_path / "usr/share/AAVMF/AAVMF_CODE.fd"
    )


def test_missing_aarch64_firmware_names_the_package(tmp_path: Path):
    _firmware_tree(tmp_path, "/usr/share/OVMF/OVMF_CODE.fd", "/usr/share/OVMF/OVMF_VARS.fd", 4096)
    with pytest.raises(MissingTool) as caught:
        cloud_images.uefi_firmware("aarch64", tmp_path)
    assert caught.value.message == "no UEFI firmware for aarch64 cloud images"
    assert caught.value.hint == "install it: sudo apt-get install qemu-efi-aarch64"


def test_aarch64_firmware_of_the_wrong_pflash_size_is_refused(tmp_path: Path):
    _firmware_tree(
        tmp_path, "/usr/share/AAVMF/AAVMF_CODE.fd", "/usr/share/AAVMF/AAVMF_VARS.fd", 2 << 20
    )
    with pytest.raises(MissingTool) as caught:
        cloud_images.uefi_firmware("aarch64", tmp_path)
    assert "AAVMF_CODE.fd is 2097152 bytes, not 67108864" in caught.value.message
    assert "qemu-efi-aarch64" in str(caught.value.hint)


def test_efi_vars_are_a_private_copy_grown_to_the_pflash_size(tmp_path: Path):
    template = tmp_path / "VARS.fd"
    template.write_bytes(b"\x5a" * 1000 + bytes(3096))
    small = tmp_path / "x86.fd"
    cloud_images.write_efi_vars(small, "x86_64", template)
    assert small.read_bytes() == template.read_bytes() and small.stat().st_mode & 0o777 == 0o600
    big = tmp_path / "a64.fd"
    cloud_images.write_efi_vars(big, "aarch64", template)
    assert big.stat().st_size == 64 << 20
    with big.open("rb") as f:
        assert f.read(4096) == template.read_bytes() and not f.read().strip(b"\0")
    assert big.stat().st_blocks * 512 < 1 << 20  # the zeros are a hole


def test_legacy_bios_argv_boots_the_disk_with_seabios():
    argv = build_argv(disk_spec(firmware_code=None))  # what the agent passes for legacyBIOS
    assert argv[argv.index("-M") + 1] == "q35" and "-kernel" not in argv
    assert not any(a.startswith("if=pflash") for a in argv)  # QEMU's default BIOS: SeaBIOS
    assert "virtio-blk-pci,drive=disk0,bootindex=0" in argv
