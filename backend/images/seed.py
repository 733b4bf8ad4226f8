"""The cloud-init NoCloud seed of a cloud-image instance: an ISO 9660 volume labelled ``cidata``.

It carries ``meta-data`` (instance id, hostname) and ``user-data`` (#cloud-config): our client
key for root, and the guest's SSH host key, so the host key pinned on the host is the one the
guest presents from its first boot (cloud-init writes it before sshd starts; no key is generated
in the guest). Built with pycdlib: no genisoimage/xorriso needed.
"""

from __future__ import annotations

import io
from pathlib import Path

import yaml

from envdeck.backend.config.guest_keys import GuestKeys
from envdeck.backend.store import atomic_output

#: ISO 9660 level-1 names are 8.3 upper case; Rock Ridge and Joliet carry the real names.
_ISO_NAMES = {"meta-data": "/METADATA.;1", "user-data": "/USERDATA.;1"}


def user_data(
    hostname: str,
    authorized_key: str,
    host_private_key: bytes,
    bootcmd: list[str] | None = None,
    guest: GuestKeys | None = None,
    extra_keys: tuple[str, ...] = (),
) -> str:
    """#cloud-config that lets our client key (and ``extra_keys``: the user's own, for
    ``ssh.loadDotSSHPubKeys``) in as root and installs our host key only; ``bootcmd`` (shell
    lines run at every boot, before sshd) mounts the instance's shares; ``guest`` adds the
    timezone, CA certificates and package upgrade the instance file asks for."""
    import asyncssh  # (here: the agent imports this module before it launches QEMU)

    key = asyncssh.import_private_key(host_private_key)
    doc: dict[str, object] = {
        "hostname": hostname,
        "disable_root": False,  # no ssh_pwauth: setting it makes cloud-init restart sshd late
        "ssh_authorized_keys": [authorized_key.strip(), *(k.strip() for k in extra_keys)],
        "ssh_deletekeys": True,
        "ssh_genkeytypes": [],
        "ssh_keys": {
            "ed25519_private": host_private_key.decode(),
            "ed25519_public": key.export_public_key("openssh").decode().strip(),
        },
    }
    if bootcmd:
        doc["bootcmd"] = list(bootcmd)
    doc.update(guest_settings(guest or GuestKeys()))
    return "#cloud-config\n" + yaml.safe_dump(doc, sort_keys=False)


def guest_settings(guest: GuestKeys) -> dict[str, object]:
    """cloud-init modules for Lima's timezone, caCerts and upgradePackages (as Lima's own
    user-data writes them); empty when the file asks for none."""
    settings: dict[str, object] = {}
    if guest.timezone:
        settings["timezone"] = guest.timezone
    if guest.ca_certs.wanted:
        certs: dict[str, object] = {}
        if guest.ca_certs.remove_defaults:
            certs["remove_defaults"] = True
        if guest.ca_certs.certs:
            certs["trusted"] = list(guest.ca_certs.certs)
        settings["ca_certs"] = certs
    if guest.upgrade_packages:  # no package_reboot_if_required: QEMU runs with -no-reboot
        settings.update(package_update=True, package_upgrade=True)
    return settings


def meta_data(instance_id: str, hostname: str) -> str:
    """NoCloud meta-data: a new ``instance_id`` makes cloud-init run its first-boot modules
    again."""
    return f"instance-id: {instance_id}\nlocal-hostname: {hostname}\n"


def write_seed(path: Path, files: dict[str, str]) -> None:
    """Write the ``cidata`` ISO with ``files`` (meta-data, user-data) to ``path`` atomically
    (0600)."""
    import pycdlib

    iso = pycdlib.PyCdlib()
    iso.new(interchange_level=1, joliet=3, rock_ridge="1.09", vol_ident="cidata")
    try:
        for name, text in files.items():
            data = text.encode()
            iso.add_fp(
                io.BytesIO(data), len(data), _ISO_NAMES[name], rr_name=name, joliet_path=f"/{name}"
            )
        with atomic_output(path) as out:
            iso.write_fp(out)
    finally:
        iso.close()


def read_seed(path: Path) -> dict[str, str]:
    """The files of a seed ISO by their Rock Ridge names (to check what a guest will see)."""
    import pycdlib

    iso = pycdlib.PyCdlib()
    iso.open(str(path))
    try:
        found = {}
        for name in _ISO_NAMES:
            out = io.BytesIO()
            iso.get_file_from_iso_fp(out, rr_path=f"/{name}")
            found[name] = out.getvalue().decode()
        return found
    finally:
        iso.close()
