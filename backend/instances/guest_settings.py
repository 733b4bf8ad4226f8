"""The guest settings of Lima keys that a guest without cloud-init gets over SSH at every boot
(the tiny guest's root lives in RAM): ``timezone`` (the host's TZif file as /etc/localtime),
``caCerts`` (/etc/ssl/certs/ca-certificates.crt: the tiny guest ships no CA store, so there are
no defaults to remove) and ``ssh.loadDotSSHPubKeys`` (root's authorized_keys). Cloud images get
them from their seed instead (images/seed.py)."""

from __future__ import annotations

import asyncio
import shlex
from typing import Any

import asyncssh

from envdeck.backend.config import ConfigError, InstanceConfig
from envdeck.backend.config.guest_keys import GuestKeys, tzif_file
from envdeck.backend.ssh.keys import dot_ssh_public_keys
from envdeck.backend.store import InstanceDir

CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"
AUTHORIZED_KEYS = "/root/.ssh/authorized_keys"


def tiny_steps(guest: GuestKeys, extra_keys: tuple[str, ...]) -> list[tuple[str, str, bytes]]:
    """(what, guest shell command, its stdin) for each setting the instance asks for."""
    steps: list[tuple[str, str, bytes]] = []
    if guest.timezone and (zone := tzif_file(guest.timezone)) is not None:
        name = shlex.quote(guest.timezone)
        steps.append(
            (
                f"timezone {guest.timezone}",
                f"cat > /etc/localtime.envdeck && mv /etc/localtime.envdeck /etc/localtime"
                f" && echo {name} > /etc/timezone",
                zone.read_bytes(),
            )
        )
    if guest.ca_certs.certs:
        steps.append(
            (
                f"{len(guest.ca_certs.certs)} CA certificate(s)",
                f"mkdir -p /etc/ssl/certs && cat > {CA_BUNDLE}",
                "".join(guest.ca_certs.certs).encode(),
            )
        )
    if extra_keys:
        # each key once, however often the guest is set up
        script = (
            f"mkdir -p /root/.ssh && touch {AUTHORIZED_KEYS} && "
            f'while IFS= read -r key; do grep -qxF "$key" {AUTHORIZED_KEYS}'
            f' || printf "%s\\n" "$key" >> {AUTHORIZED_KEYS}; done'
        )
        steps.append((f"{len(extra_keys)} key(s) from ~/.ssh", script, _lines(extra_keys)))
    return steps


def _lines(items: tuple[str, ...]) -> bytes:
    return "".join(f"{item.strip()}\n" for item in items).encode()


async def apply_tiny(conn: Any, cfg: InstanceConfig) -> list[str]:
    """Apply the settings in a guest without cloud-init; what went wrong, one line each."""
    extra = dot_ssh_public_keys() if cfg.guest.load_dot_ssh_pub_keys else ()
    problems = []
    for what, command, data in tiny_steps(cfg.guest, extra):
        try:
            result = await _run(conn, command, data)
        except (OSError, asyncssh.Error) as exc:
            problems.append(f"{what}: {exc}")
            continue
        if result.exit_status != 0:
            said = bytes(result.stderr or b"").decode(errors="replace").strip()
            problems.append(f"{what}: {said or f'exit status {result.exit_status}'}")
    return problems


async def _run(conn: Any, command: str, data: bytes, tries: int = 5) -> Any:
    """Run ``command`` with ``data`` on stdin; dropbear may refuse a session while the guest's
    boot still settles (seen right after the first login), so a refused one is tried again."""
    for _ in range(tries - 1):
        try:
            return await conn.run(command, input=data, check=False, encoding=None)
        except asyncssh.ChannelOpenError:
            await asyncio.sleep(0.5)
    return await conn.run(command, input=data, check=False, encoding=None)


def forwards_agent(inst: InstanceDir) -> bool:
    """Whether ``envdeck shell`` forwards the user's SSH agent (``ssh.forwardAgent``); an
    instance file broken since its start forwards nothing."""
    from envdeck.backend.instances import files

    try:
        return files.load(inst).guest.forward_agent
    except (ConfigError, OSError):
        return False
