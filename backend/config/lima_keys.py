"""Every top-level key of Lima's instance YAML, and what envdeck does with it.

``honoured`` keys shape the guest; ``warned`` keys are accepted with one warning line saying
why they mean nothing here (only when the value asks for something: null, false and empty
values are Lima's defaults and pass silently); values that cannot run on this host are refused
where they are parsed (``os``, ``vmType``, ``arch``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

#: the Lima release whose instance YAML envdeck follows
LIMA_VERSION = "2.2.0"


@dataclass(frozen=True)
class LimaKey:
    """What envdeck does with one Lima key, and why."""

    decision: str  # "honoured" or "warned"
    why: str


def _honoured(why: str) -> LimaKey:
    return LimaKey("honoured", why)


def _warned(why: str) -> LimaKey:
    return LimaKey("warned", why)


LIMA_KEYS: dict[str, LimaKey] = {
    "minimumLimaVersion": _honoured(f"compared with Lima {LIMA_VERSION}, which envdeck follows"),
    "base": _honoured("base templates composed with Lima's rules"),
    "vmType": _honoured("qemu is what envdeck runs"),
    "os": _honoured("Linux guests"),
    "arch": _honoured("guest architecture"),
    "images": _honoured("the image for the instance's arch"),
    "cpus": _honoured("virtual CPUs"),
    "memory": _honoured("guest memory"),
    "disk": _honoured("disk size"),
    "cpuType": _honoured("QEMU -cpu model per arch"),
    "ssh": _honoured(
        "localPort; forwardAgent ('envdeck shell' forwards your agent); loadDotSSHPubKeys"
        " (your ~/.ssh/*.pub also let you in as root)"
    ),
    "portForwards": _honoured("TCP ports and unix sockets"),
    "provision": _honoured("modes boot, dependency, data, yq, system and user"),
    "probes": _honoured("readiness scripts with their hint"),
    "message": _honoured("shown when the instance is ready"),
    "param": _honoured("{{.Param.KEY}} and $PARAM_KEY in scripts"),
    "env": _honoured("exported to provision and probe scripts"),
    "user": _honoured("the account mode: user scripts run as ({{.User}}, {{.UID}}, {{.Home}})"),
    "containerd": _warned(
        "envdeck does not install containerd or nerdctl; for containers use a Docker"
        " instance (e.g. base: template:docker) or Docker on the host"
    ),
    "mounts": _honoured("host folders shared over virtio-9p, read-only unless writable"),
    "mountType": _honoured("9p; virtiofs and reverse-sshfs are served over 9p (with a warning)"),
    "mountTypesUnsupported": _warned(
        "envdeck shares folders over 9p only, so a listed type is not avoided"
    ),
    "mountInotify": _warned("host changes do not raise inotify events in the guest (9p)"),
    "hostResolver": _warned("the guest uses QEMU's user-mode DNS; hosts entries are not added"),
    "dns": _warned("the guest uses QEMU's user-mode DNS"),
    "video": _warned("envdeck runs guests headless (serial console only)"),
    "audio": _warned("envdeck gives guests no sound device"),
    "rosetta": _warned("Rosetta exists only on Apple Silicon macOS hosts"),
    "nestedVirtualization": _warned("a setting of Apple's vz; QEMU guests get the host CPU's"),
    "vmOpts": _warned("QEMU and vz options beyond cpuType are not passed through"),
    "networks": _warned(
        "envdeck gives each guest QEMU user-mode networking only (no socket_vmnet, lima: or"
        " vzNAT networks)"
    ),
    "additionalDisks": _warned("envdeck attaches one disk per instance"),
    "tpm": _warned("envdeck gives guests no TPM"),
    "osOpts": _warned("options of non-Linux guests"),
    "firmware": _honoured(
        "legacyBIOS: x86_64 disk images boot with QEMU's SeaBIOS instead of UEFI (OVMF)"
    ),
    "plain": _honoured(
        "Lima's plain mode: no mounts, no automatic or non-static port forwards, no agent"
        " forwarding, no timezone; provisioning still runs"
    ),
    "copyToHost": _honoured("guest files copied to the host over SSH once the guest is ready"),
    "timezone": _honoured("cloud images: cloud-init's timezone; the tiny guest: /etc/localtime"),
    "caCerts": _honoured(
        "cloud images: cloud-init's ca_certs; the tiny guest: /etc/ssl/certs/ca-certificates.crt"
    ),
    "upgradePackages": _honoured("cloud images upgrade their packages at first boot"),
    "propagateProxyEnv": _warned("the host's proxy variables are not copied into the guest"),
    "guestInstallPrefix": _warned("envdeck installs no guest agent (it works over SSH)"),
}

#: ssh sub-keys envdeck honours besides localPort (parsed in guest_keys)
SSH_HONOURED = {
    "loadDotSSHPubKeys": "~/.ssh/*.pub also go into the guest's authorized_keys (root)",
    "forwardAgent": "'envdeck shell' forwards your SSH agent (ssh -A)",
}
#: ssh sub-keys beyond those: accepted, warned when set
SSH_WARNED = {
    "forwardX11": "'envdeck shell' does not forward X11",
    "forwardX11Trusted": "'envdeck shell' does not forward X11",
    "overVsock": "envdeck reaches sshd through a QEMU port forward",
}


def asks_for_something(value: Any) -> bool:
    """Whether a plain YAML value sets anything (null, false, '' and empty collections don't)."""
    if isinstance(value, dict):
        return any(asks_for_something(v) for v in value.values())
    if isinstance(value, list):
        return any(asks_for_something(v) for v in value)
    return value not in (None, False, "", 0)


def version_tuple(text: str) -> tuple[int, ...] | None:
    """'2.1.0' -> (2, 1, 0); None when it is not a dotted version."""
    parts = text.strip().removeprefix("v").split("-", 1)[0].split(".")
    if not all(part.isdigit() for part in parts):
        return None
    return tuple(int(part) for part in parts)
