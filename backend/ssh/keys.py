"""Per-instance SSH keys: a client key pair and the guest's host key, pinned on the host."""

from __future__ import annotations

from pathlib import Path

from envdeck.backend.store import InstanceDir, write_atomic


def host_alias(name: str) -> str:
    """The name the guest's host key is pinned under (ports change; the alias does not)."""
    return f"envdeck-{name}"


def create_keys(inst: InstanceDir) -> None:
    """Generate the client key and guest host key (0600) and the pinned known_hosts line."""
    import asyncssh  # (here: the agent imports this module before it launches QEMU)

    inst.create()
    client = asyncssh.generate_private_key("ssh-ed25519", comment=f"envdeck@{inst.name}")
    host = asyncssh.generate_private_key("ssh-ed25519", comment=f"host@{inst.name}")
    write_atomic(inst.client_key, client.export_private_key("openssh"))
    write_atomic(inst.client_key.with_suffix(".pub"), client.export_public_key("openssh"), 0o644)
    write_atomic(inst.host_key, host.export_private_key("openssh"))
    pinned = host.export_public_key("openssh").decode().strip()
    write_atomic(inst.known_hosts, f"{host_alias(inst.name)} {pinned}\n")


def authorized_keys(inst: InstanceDir) -> str:
    """The client public key line to put in the guest's authorized_keys."""
    return inst.client_key.with_suffix(".pub").read_text()


def host_private_key(inst: InstanceDir) -> bytes:
    """The guest host key (OpenSSH private key format) that goes into the guest."""
    return inst.host_key.read_bytes()


def dot_ssh_public_keys(home: Path | None = None) -> tuple[str, ...]:
    """The user's ``~/.ssh/*.pub`` key lines (Lima's ``ssh.loadDotSSHPubKeys``), sorted by file
    name; a file that is not an OpenSSH public key is skipped, as Lima does."""
    import asyncssh

    folder = (home or Path.home()) / ".ssh"
    found = []
    for path in sorted(folder.glob("*.pub")):
        try:
            line = path.read_text(encoding="utf-8").strip()
            asyncssh.import_public_key(line)
        except (OSError, UnicodeDecodeError, ValueError, asyncssh.KeyImportError):
            continue
        found.append(line)
    return tuple(found)
