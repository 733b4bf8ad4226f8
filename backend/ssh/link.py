"""The agent's SSH link to its guest: asyncssh for commands, an OpenSSH master for forward data.

After the first successful connection the link watches it: when it drops, ``on_lost`` is called
and it reconnects with backoff (``on_back`` when it is up again). Meanwhile it keeps an OpenSSH
ControlMaster running (restarted if it dies) for the forwards' fast path (see ``ssh_mux``).
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Callable
from typing import Any

from envdeck.backend.ssh import client as ssh
from envdeck.backend.ssh.mux import MuxError, OpenSSHMaster, control_path_for
from envdeck.backend.store import InstanceDir

log = logging.getLogger("envdeck.agent")

#: the first login's time limit (banner, key exchange, auth): at least this...
LOGIN_TIMEOUT_S = 5.0
#: ...or this share of the time the guest took to open its SSH port, up to the cap: a guest that
#: boots slowly (a Debian VM under TCG on a loaded host) answers its first login slowly too
LOGIN_PACE_SHARE = 0.25
LOGIN_TIMEOUT_CAP_S = 30.0


def login_timeout(port_open_after: float | None) -> float:
    """The first login's time limit for a guest whose SSH port opened ``port_open_after``
    seconds into its boot (None: not known)."""
    paced = LOGIN_PACE_SHARE * (port_open_after or 0.0)
    return min(LOGIN_TIMEOUT_CAP_S, max(LOGIN_TIMEOUT_S, paced))


class GuestLink:
    """SSH to one guest on 127.0.0.1:``port``, held for the agent's lifetime."""

    def __init__(
        self,
        inst: InstanceDir,
        say: Callable[[str, str], None],
        on_lost: Callable[[], None],
        on_back: Callable[[], None],
    ) -> None:
        self.inst = inst
        self.conn: Any = None  # the asyncssh connection (possibly closed; see ``up``)
        self.up = False
        self.master: OpenSSHMaster | None = None
        self.closing = False
        self._say = say
        self._on_lost = on_lost
        self._on_back = on_back
        self._tasks: list[asyncio.Task[Any]] = []

    async def try_connect(
        self, port: int, sock: socket.socket | None = None, timeout: float = LOGIN_TIMEOUT_S
    ) -> bool:
        """One attempt to log in (over ``sock``, a probe's connection, when given) within
        ``timeout`` seconds; on success the link starts watching itself.

        The login is the whole check: no command runs before ready (a session and a fork in a
        guest under TCG cost ~50 ms); what runs later reports its own failure.

        Raises ``ssh.HostKeyChanged`` when the guest presents another host key.
        """
        try:
            conn = await ssh.connect(self.inst, port, timeout=timeout, sock=sock)
        except ssh.HostKeyChanged:
            raise
        except Exception as exc:  # noqa: BLE001 - the caller retries until its deadline
            log.info("ssh not ready yet: %s", exc)
            return False
        self.conn, self.up = conn, True
        self._tasks.append(asyncio.create_task(self._watch(conn, port)))
        self._tasks.append(asyncio.create_task(self._keep_master(port)))
        return True

    def master_path(self) -> str | None:
        """The OpenSSH master's control socket while it runs, else None (forwards use asyncssh)."""
        return str(self.master.control_path) if self.master and self.master.alive else None

    async def _watch(self, conn: Any, port: int) -> None:
        await conn.wait_closed()
        self.up = False
        delay = 0.5
        while not self.closing:
            self._on_lost()
            try:
                new = await ssh.connect(self.inst, port, timeout=5)
            except Exception:  # noqa: BLE001 - down until the guest answers again
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10)
                continue
            self.conn, self.up = new, True
            if not self.closing:
                self._on_back()
            await new.wait_closed()
            self.up = False
            delay = 0.5

    async def _keep_master(self, port: int, retry: float = 2.0) -> None:
        """Keep an OpenSSH master up while the link lives: restart it when it exits (it exits
        when the guest connection drops; it cannot connect until the guest is back)."""
        try:
            path = control_path_for(self.inst.root)
        except MuxError as exc:
            self._say("warning", f"forwards run over asyncssh (slower): {exc}")
            return
        options = [
            *ssh.openssh_options(self.inst, port),
            "-c",
            ",".join(ssh.FAST_CIPHERS),
            "-o",
            f"ServerAliveInterval={int(ssh.keepalive_interval())}",
        ]
        last_error = None
        try:
            while not self.closing:
                master = OpenSSHMaster(
                    options, "root@127.0.0.1", path, self.inst.root / "ssh-master.pid"
                )
                try:
                    await master.start()
                except MuxError as exc:
                    if str(exc) != last_error:
                        self._say("warning", f"forwards run over asyncssh (slower): {exc}")
                    last_error = str(exc)
                    await asyncio.sleep(retry)
                    continue
                if last_error is not None:  # the warning about asyncssh no longer holds
                    self._say("info", "forwards run over the OpenSSH master again")
                self.master, last_error = master, None
                await master.wait()
                await master.close()
                self.master = None
                await asyncio.sleep(retry)  # never a tight loop of masters that die at once
        finally:
            if self.master is not None:
                await self.master.close()
                self.master = None

    def hang_up(self) -> None:
        """Stop reconnecting and close the asyncssh connection (the agent is stopping)."""
        self.closing = True
        if self.conn is not None:
            self.conn.close()

    async def close(self) -> None:
        """Hang up, stop the watchers, and stop the OpenSSH master."""
        self.hang_up()
        for task in self._tasks:
            task.cancel()
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=10)
        if self.master is not None:
            await self.master.close()
            self.master = None
