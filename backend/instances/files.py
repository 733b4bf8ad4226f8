"""What an instance needs on disk before QEMU can start: kernel, initramfs, disk, ssh port."""

from __future__ import annotations

import secrets
import socket
import subprocess
from collections.abc import Callable
from pathlib import Path

from envdeck.backend.config import (
    DOCKER_GUEST_SOCKET,
    DOCKER_HOST_SOCKET,
    InstanceConfig,
    load_config,
)
from envdeck.backend.errors import EnvdeckError
from envdeck.backend.hosttools import require_tool
from envdeck.backend.images import initramfs as images
from envdeck.backend.ssh import keys as sshkeys
from envdeck.backend.store import InstanceDir
from envdeck.backend.vm import mounts as vm_mounts

Progress = Callable[[str, float | None], None]


def load(inst: InstanceDir) -> InstanceConfig:
    """The instance's config; relative paths resolve against the folder of the YAML it came from."""
    source_dir = inst.read_state().get("source_dir")
    cfg_text_path = inst.config
    if source_dir:
        from envdeck.backend.config import parse_config

        return parse_config(cfg_text_path.read_text(), str(cfg_text_path), Path(source_dir))
    return load_config(cfg_text_path)


def prepare(
    inst: InstanceDir, cfg: InstanceConfig, progress: Progress | None, *, refresh: bool = True
) -> None:
    """Build (or reuse) the base image, the instance's initramfs and its disk.

    With ``refresh=False`` (at start) an instance keeps the image it was created with as long
    as its files are there; ``create`` refreshes.
    """
    if not inst.client_key.exists() or not inst.host_key.exists():
        sshkeys.create_keys(inst)
    kernel = inst.read_state().get("kernel")
    prepared = inst.initrd.exists() and kernel and Path(kernel).exists()
    if cfg.template == "tiny" and (refresh or not prepared):
        image = images.tiny_image(progress, cfg.arch)
        state = inst.read_state()
        if state.get("initrd_digest") != image.digest or not inst.initrd.exists():
            if progress:
                progress("writing the instance's initramfs (keys, hostname)", None)
            images.instance_initrd(
                image,
                inst.initrd,
                host_key=sshkeys.host_private_key(inst),
                authorized_keys=sshkeys.authorized_keys(inst),
                hostname=inst.name,
            )
            inst.update_state(initrd_digest=image.digest, kernel=str(image.kernel))
    if cfg.boots_disk:
        _prepare_cloud(inst, cfg, progress)
        return
    if not inst.disk.exists():
        if progress:
            progress("creating the disk (qcow2)", None)
        qemu_img = require_tool("qemu-img")
        result = subprocess.run(
            [qemu_img, "create", "-q", "-f", "qcow2", str(inst.disk), str(cfg.disk_bytes)],
            capture_output=True,
            text=True,
        )
        if result.returncode != 0:
            raise EnvdeckError(f"qemu-img could not create the disk: {result.stderr.strip()}")
        inst.disk.chmod(0o600)


def _prepare_cloud(inst: InstanceDir, cfg: InstanceConfig, progress: Progress | None) -> None:
    """Cloud image: the cached image, a qcow2 overlay on it, UEFI variables, the NoCloud seed.

    The docker template's image is built here from Debian packages (once, then cached); an
    instance keeps the image its disk was made on."""
    from envdeck.backend.images import cloud as cloud_images
    from envdeck.backend.images import docker_vm
    from envdeck.backend.images import seed as cloud_seed

    if cfg.docker:
        kept = inst.read_state().get("base_image")
        if kept and inst.disk.exists() and Path(kept).exists():
            base = Path(kept)
        else:
            base = docker_vm.image("docker", progress, cfg.arch)
    else:
        base = cloud_images.fetch(cloud_images.pick_image(cfg.images, cfg.arch), progress)
    _, vars_template = cloud_images.uefi_firmware(cfg.arch)
    if not inst.disk.exists():
        if progress:
            progress("creating the disk (qcow2 overlay on the image)", None)
        cloud_images.create_overlay(base, inst.disk, cfg.disk_bytes)
    if not inst.efi_vars.exists():
        cloud_images.write_efi_vars(inst.efi_vars, cfg.arch, vars_template)
    state = inst.read_state()
    instance_id = state.get("instance_id") or f"envdeck-{inst.name}-{secrets.token_hex(4)}"
    cloud_seed.write_seed(
        inst.seed,
        {
            "meta-data": cloud_seed.meta_data(instance_id, inst.name),
            "user-data": cloud_seed.user_data(
                inst.name,
                sshkeys.authorized_keys(inst),
                sshkeys.host_private_key(inst),
                bootcmd=vm_mounts.cloud_bootcmd(vm_mounts.shares_for(cfg, inst)),
                guest=cfg.guest,
                extra_keys=sshkeys.dot_ssh_public_keys() if cfg.guest.load_dot_ssh_pub_keys else (),
            ),
        },
    )
    inst.update_state(instance_id=instance_id, base_image=str(base))
    if cfg.docker:  # listed as the instance:NAME docker endpoint, running or not
        inst.update_state(docker_socket=str(docker_socket(inst, cfg)))


def docker_socket(inst: InstanceDir, cfg: InstanceConfig) -> Path:
    """Where the docker template's guest socket is forwarded (docker.sock in the instance dir,
    unless the instance's portForwards say otherwise)."""
    from envdeck.backend.forwards.manager import socket_rules

    for guest, host in socket_rules(cfg.port_forwards, inst.root):
        if guest == DOCKER_GUEST_SOCKET:
            return host
    return inst.root / DOCKER_HOST_SOCKET


def boot_files(inst: InstanceDir, cfg: InstanceConfig) -> tuple[Path, Path | None, str]:
    """(kernel, initrd, kernel command line) for QEMU."""
    if cfg.kernel is not None:
        return cfg.kernel.path, cfg.kernel.initrd, cfg.kernel.cmdline or "console=ttyS0"
    kernel = inst.read_state().get("kernel")
    if not kernel or not Path(kernel).exists():
        raise EnvdeckError(
            f"the tiny image of {inst.name!r} is not prepared",
            hint=f"run 'envdeck start {inst.name}' again (it rebuilds the image)",
        )
    return Path(kernel), inst.initrd, images.tiny_cmdline(cfg.arch)


def port_free(port: int) -> bool:
    """Whether 127.0.0.1:port can be bound right now."""
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


def pick_ssh_port(inst: InstanceDir, cfg: InstanceConfig, held: int | None = None) -> int:
    """The configured ssh.localPort, else the port used last time if free, else a free one;
    ``held``: a port our own QEMU holds (launched from the last start's plan), free for this."""
    if cfg.ssh_local_port:
        if cfg.ssh_local_port != held and not port_free(cfg.ssh_local_port):
            raise EnvdeckError(
                f"ssh.localPort {cfg.ssh_local_port} is already in use on 127.0.0.1",
                hint="free that port or set ssh.localPort: 0 to pick one",
            )
        return cfg.ssh_local_port
    previous = inst.read_state().get("ssh_port")
    if previous and (int(previous) == held or port_free(int(previous))):
        return int(previous)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
