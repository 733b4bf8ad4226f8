"""SSH to an instance's guest with asyncssh: explicit keys, the guest host key pinned.

Never "accept any key": a guest presenting another key fails with HostKeyChanged.
The user's ssh config and agent are kept out.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import TYPE_CHECKING

from envdeck.backend.errors import EnvdeckError
from envdeck.backend.ssh.keys import host_alias
from envdeck.backend.store import InstanceDir

if TYPE_CHECKING:  # (imported where used: the agent launches QEMU before it needs asyncssh)
    import asyncssh

# AES-GCM is the fastest cipher on hosts with AES-NI (the link is loopback to the guest).
FAST_CIPHERS = ("aes128-gcm@openssh.com", "aes256-gcm@openssh.com", "chacha20-poly1305@openssh.com")


def keepalive_interval() -> float:
    """Seconds between SSH keepalives; three missed ones end the connection (then it reconnects).

    ENVDECK_SSH_KEEPALIVE overrides the default of 15 (tests use a short one)."""
    try:
        return max(1.0, float(os.environ.get("ENVDECK_SSH_KEEPALIVE", "15")))
    except ValueError:
        return 15.0


class HostKeyChanged(EnvdeckError):
    """The guest presented a host key other than the pinned one."""


async def connect(
    inst: InstanceDir, port: int, *, timeout: float = 10.0, sock: socket.socket | None = None
) -> asyncssh.SSHClientConnection:
    """Open an authenticated, host-key-pinned SSH connection to the guest on 127.0.0.1:port
    (over ``sock`` when given: a connection to it whose banner is not read yet)."""
    import asyncssh

    try:
        return await asyncssh.connect(
            "127.0.0.1",
            port,
            sock=sock,
            username="root",
            client_keys=[str(inst.client_key)],
            known_hosts=str(inst.known_hosts),
            host_key_alias=host_alias(inst.name),
            agent_path=None,
            config=None,
            connect_timeout=timeout,
            keepalive_interval=keepalive_interval(),
            encryption_algs=list(FAST_CIPHERS),
        )
    except asyncssh.HostKeyNotVerifiable as exc:
        raise HostKeyChanged(
            f"the guest of {inst.name!r} presented a host key that is not the pinned one ({exc})",
            hint="if you rebuilt the guest on purpose, recreate the instance;"
            f" pinned keys: {inst.known_hosts}",
        ) from exc


def ssh_path(path: Path | str) -> str:
    """A path for an OpenSSH flag that expands %-tokens (-i, -S): ``%`` doubled."""
    return str(path).replace("%", "%%")


def ssh_option_path(path: Path | str) -> str:
    """A path as the value of ``-o Key=value``: %-tokens escaped, then double-quoted with ``\\``
    and ``"`` backslash-escaped (ssh splits an unquoted value at spaces into several files)."""
    quoted = ssh_path(path).replace("\\", "\\\\").replace('"', '\\"')
    return f'"{quoted}"'


def openssh_options(inst: InstanceDir, port: int) -> list[str]:
    """OpenSSH client options for the guest: host key pinned, our key only, no user config.

    Paths are escaped for ssh's own parsing (ENVDECK_HOME may hold spaces or ``%``)."""
    return [
        "-i",
        ssh_path(inst.client_key),
        "-p",
        str(port),
        "-o",
        "IdentitiesOnly=yes",
        "-o",
        "StrictHostKeyChecking=yes",
        "-o",
        f"UserKnownHostsFile={ssh_option_path(inst.known_hosts)}",
        "-o",
        f"HostKeyAlias={host_alias(inst.name)}",
        "-o",
        "GlobalKnownHostsFile=/dev/null",
        "-o",
        "LogLevel=ERROR",
        "-F",
        "/dev/null",
    ]


def openssh_argv(
    inst: InstanceDir,
    port: int,
    command: list[str] | None = None,
    tty: bool = True,
    *,
    forward_agent: bool = False,
) -> list[str]:
    """The OpenSSH client command for an interactive shell (host key pinned, our key only);
    ``forward_agent`` (Lima's ``ssh.forwardAgent``) forwards the user's SSH agent."""
    argv = ["ssh", *openssh_options(inst, port)]
    argv += ["-t"] if tty else ["-T"]
    if forward_agent:
        argv += ["-o", "ForwardAgent=yes"]
    argv.append("root@127.0.0.1")
    if command:
        argv += ["--", *command]
    return argv
