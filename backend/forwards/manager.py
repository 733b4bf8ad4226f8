"""Port forwards of one instance, owned by its agent: rules, manual adds, auto-detected listeners.

Each forward is a host listener (127.0.0.1 unless the user wrote another address) whose
connections are carried to the guest, counting connections and bytes. A TCP connection goes
through the agent's OpenSSH master when one is up (a stdio forward, bytes moved with splice(2):
see ``ssh_mux``), otherwise over the asyncssh connection (a direct-tcpip channel); a unix-socket
forward runs socat in the guest over asyncssh. Listeners stay up across SSH reconnects: a
connection made while SSH is down is closed at once and counted as refused.

A listener beyond loopback is reported with a warning (its ``reason``): the port is reachable
from the network. A ``hostSocket`` never takes over a path: a live socket or any other file
there is a conflict; only a stale socket nobody listens on is replaced, and only the socket
envdeck bound (same device and inode) is removed when the forward ends.

``bytes_out`` counts host -> guest, ``bytes_in`` guest -> host.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import functools
import ipaddress
import logging
import os
import re
import shlex
import socket
import stat
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncssh

from envdeck.backend.config import PortForwardRule
from envdeck.backend.errors import UserInputError
from envdeck.backend.events import Event, ForwardRemoved, ForwardStatus
from envdeck.backend.forwards.listeners import Listener
from envdeck.backend.ssh import mux as ssh_mux
from envdeck.backend.ssh import splice as splice_relay

log = logging.getLogger(__name__)

SSH_GUEST_PORT = 22
CHUNK = 256 << 10
RETRY_S = 5.0  # a conflicting or failed listener is retried this often

ConnGetter = Callable[[], Any]
MuxGetter = Callable[[], str | None]  # the OpenSSH master's control socket, if one is up


@dataclass
class Forward:
    """One forward and its live counters."""

    guest_port: int
    host_ip: str
    host_port: int
    source: str  # rule|auto|manual
    state: str = "pending"
    reason: str | None = None
    connections: int = 0
    refused: int = 0
    bytes_in: int = 0
    bytes_out: int = 0
    last_try: float = 0.0
    guest_socket: str | None = None  # a unix socket forward: guest path -> host path
    host_socket: Path | None = None
    guest_missing: bool = False  # a socket forward whose guest path has no socket (failed)
    server: HostListener | None = field(default=None, repr=False)

    @property
    def key(self) -> str:
        return self.guest_socket or str(self.guest_port)

    @property
    def host(self) -> str:
        if self.host_socket is not None:
            return str(self.host_socket)
        return (
            f"[{self.host_ip}]:{self.host_port}"
            if ":" in self.host_ip
            else f"{self.host_ip}:{self.host_port}"
        )

    def event(self, instance: str) -> ForwardStatus:
        return ForwardStatus(
            instance=instance,
            guest=self.key,
            host=self.host,
            source=self.source,
            state=self.state,
            reason=self.reason,
            connections=self.connections,
            bytes_in=self.bytes_in,
            bytes_out=self.bytes_out,
        )

    def to_json(self) -> dict[str, Any]:
        """The ``forwards --json`` object."""
        return {
            "guest": self.key,
            "host": self.host,
            "source": self.source,
            "state": self.state,
            "reason": self.reason,
            "connections": self.connections,
            "bytes_in": self.bytes_in,
            "bytes_out": self.bytes_out,
        }


class HostListener:
    """A listening socket and the task that accepts on it; ``handle(conn)`` runs per connection.

    For a unix socket, ``bound`` is the socket file it made (removed on close if still ours)."""

    def __init__(
        self,
        sock: socket.socket,
        handle: Callable[[socket.socket], Any],
        bound: BoundPath | None = None,
    ) -> None:
        self.sock = sock
        self.bound = bound
        self._handle = handle
        self._task = asyncio.create_task(self._accept())

    async def _accept(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            try:
                conn, _ = await loop.sock_accept(self.sock)
            except OSError:  # EMFILE and friends: back off instead of spinning
                await asyncio.sleep(0.1)
                continue
            self._handle(conn)

    def close(self) -> None:
        self._task.cancel()
        self.sock.close()
        if self.bound is not None:
            self.bound.remove()


@dataclass(frozen=True)
class BoundPath:
    """A unix socket file envdeck bound: its path and the (device, inode) it had then."""

    path: Path
    device: int
    inode: int

    @classmethod
    def of(cls, path: Path) -> BoundPath:
        info = path.lstat()
        return cls(path, info.st_dev, info.st_ino)

    def remove(self) -> None:
        """Unlink the path only if it is still the socket we bound (not a file put there since)."""
        try:
            info = self.path.lstat()
        except OSError:
            return
        if stat.S_ISSOCK(info.st_mode) and (info.st_dev, info.st_ino) == (self.device, self.inode):
            with contextlib.suppress(FileNotFoundError):
                self.path.unlink()


class PathTaken(OSError):
    """Something envdeck did not make is at a hostSocket path (a forward conflict)."""

    def __init__(self, reason: str) -> None:
        super().__init__(errno.EADDRINUSE, reason)
        self.reason = reason


def bind_tcp(host_ip: str, port: int) -> socket.socket:
    """A listening TCP socket on host_ip:port (OSError if taken)."""
    family, kind, proto, _, address = socket.getaddrinfo(
        host_ip, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
    )[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        sock.bind(address)
        sock.listen(128)
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock


def bind_unix(path: Path) -> tuple[socket.socket, BoundPath]:
    """A listening unix socket only its owner can use, and the file it made.

    A socket nobody listens on (a dead agent's) is replaced; a live socket or any other file
    at ``path`` raises PathTaken and is left alone."""
    path.parent.mkdir(parents=True, exist_ok=True)
    _clear_stale_socket(path)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    old_umask = os.umask(0o177)
    try:
        sock.bind(str(path))
        bound = BoundPath.of(path)
        sock.listen(128)
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    finally:
        os.umask(old_umask)
    return sock, bound


def _clear_stale_socket(path: Path) -> None:
    try:
        info = path.lstat()
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(info.st_mode):
        raise PathTaken(f"{path} exists and is not a socket (envdeck leaves it alone)")
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    probe.settimeout(1.0)
    try:
        probe.connect(str(path))
    except ConnectionRefusedError:  # nobody listens: a stale socket file
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        return
    except OSError as exc:
        raise PathTaken(
            f"{path} is a socket envdeck cannot check ({exc.strerror or exc})"
        ) from None
    finally:
        probe.close()
    raise PathTaken(f"{path} is a live socket of another program")


def exposure_warning(host_ip: str) -> str | None:
    """A warning for a listener beyond loopback (None for 127.0.0.0/8 and ::1)."""
    try:
        loopback = ipaddress.ip_address(host_ip).is_loopback
    except ValueError:
        return None
    if loopback:
        return None
    return f"warning: listening on {host_ip}: the port is reachable from the network"


#: how long a guest socket forward carries one direction after the other ended (socat -t)
HALF_CLOSED_S = 365 * 24 * 3600


def socat_escape(value: str) -> str:
    """``value`` as one parameter of a socat address: its special characters backslash-escaped."""
    return re.sub(r"""([\\:,!'"()\[\]{}])""", r"\\\1", value)


def auto_target(port: int, rules: tuple[PortForwardRule, ...]) -> tuple[str, int] | None:
    """Where a guest listener on ``port`` goes: (host ip, host port), or None if not forwarded.

    The first rule whose guest range holds the port decides (Lima's order); ``ignore`` drops it.
    With no matching rule, the port goes to the same port on 127.0.0.1. The guest's sshd is
    already reachable through QEMU and is never auto-forwarded.
    """
    if port == SSH_GUEST_PORT:
        return None
    for rule in rules:
        if rule.guest_port_range is None:
            continue
        low, high = rule.guest_port_range
        if low <= port <= high:
            if rule.ignore:
                return None
            host_low = (rule.host_port_range or rule.guest_port_range)[0]
            return rule.host_ip, host_low + (port - low)
    return "127.0.0.1", port


def static_rules(rules: tuple[PortForwardRule, ...]) -> list[tuple[int, str, int]]:
    """Single-port rules are always-on forwards: (guest port, host ip, host port)."""
    found = []
    for rule in rules:
        if rule.ignore or rule.guest_port_range is None or rule.guest_socket:
            continue
        low, high = rule.guest_port_range
        if low == high:
            host = (rule.host_port_range or rule.guest_port_range)[0]
            found.append((low, rule.host_ip, host))
    return found


def guest_socket_probe(paths: list[str]) -> str:
    """A guest shell command printing each of ``paths`` that is a unix socket, one a line."""
    quoted = " ".join(shlex.quote(path) for path in paths)
    return f'for p in {quoted}; do [ -S "$p" ] && printf "%s\\n" "$p"; done; true'


def socket_rules(rules: tuple[PortForwardRule, ...], base: Path) -> list[tuple[str, Path]]:
    """guestSocket rules: (guest path, host path); a relative host path is under ``base``."""
    found = []
    for rule in rules:
        if rule.ignore or not rule.guest_socket or not rule.host_socket:
            continue
        host = Path(rule.host_socket).expanduser()
        found.append((rule.guest_socket, host if host.is_absolute() else base / host))
    return found


_PORT_RE = re.compile(r"[0-9]{1,5}")


def parse_spec(spec: str) -> tuple[int, str, int]:
    """'8080' or '80:8080' or '80:0.0.0.0:8080' -> (guest port, host ip, host port).

    Both ports must be 1-65535: a runtime forward has a fixed host port (port 0, "any free
    port", is not offered: the saved forward would move on every restart)."""
    parts = spec.split(":")
    if len(parts) == 1:
        parts = [parts[0], "127.0.0.1", parts[0]]
    elif len(parts) == 2:
        parts = [parts[0], "127.0.0.1", parts[1]]
    if len(parts) != 3 or not all(_PORT_RE.fullmatch(p) for p in (parts[0], parts[2])):
        raise UserInputError(
            f"forward {spec!r} is not GUEST[:HOST]",
            hint="e.g. 8080, 80:8080, or 80:0.0.0.0:8080 to listen beyond loopback",
        )
    guest, host_ip, host_port = int(parts[0]), parts[1], int(parts[2])
    for what, port in (("guest", guest), ("host", host_port)):
        if not 1 <= port <= 65535:
            raise UserInputError(
                f"forward {spec!r}: {what} port {port} is out of range", hint="use 1 to 65535"
            )
    try:
        ipaddress.IPv4Address(host_ip)
    except ValueError:
        raise UserInputError(
            f"forward {spec!r}: {host_ip!r} is not an IPv4 address",
            hint="use 127.0.0.1 (the default) or an address of this host, e.g. 0.0.0.0",
        ) from None
    return guest, host_ip, host_port


class ForwardManager:
    """All forwards of one instance."""

    def __init__(
        self,
        instance: str,
        rules: tuple[PortForwardRule, ...],
        emit: Callable[[Event], None],
        conn: ConnGetter,
        base_dir: Path | None = None,
        mux: MuxGetter | None = None,
    ) -> None:
        self.instance = instance
        self.base_dir = base_dir or Path.cwd()
        self.rules = rules
        self._emit = emit
        self._conn = conn
        self._mux = mux or (lambda: None)
        self.forwards: dict[str, Forward] = {}
        self.removed: set[str] = set()  # keys the user removed: no rule or auto brings them back
        self._dirty: set[str] = set()
        self._flusher: asyncio.Task[None] | None = None
        self._carriers: set[asyncio.Task[Any]] = set()

    # --- lifecycle --------------------------------------------------------------------------

    async def start(self, manual: list[dict[str, Any]], removed: Iterable[str] = ()) -> None:
        """Open the always-on forwards: single-port rules, then the user's runtime adds; none
        the user removed (``removed``: guest ports or socket paths)."""
        self._flusher = asyncio.create_task(self._flush_counters())
        self.removed = {str(key) for key in removed}
        runtime: list[Forward] = []
        for item in manual:
            try:
                guest, host_ip, host_port = parse_spec(str(item.get("spec")))
            except UserInputError as exc:  # saved by an older envdeck that did not check
                log.warning("skipping the saved forward %r: %s", item.get("spec"), exc.message)
                continue
            runtime.append(Forward(guest, host_ip, host_port, "manual"))
        skipped = self.removed | {fwd.key for fwd in runtime}  # a runtime add replaces a rule
        for guest, host_ip, host_port in static_rules(self.rules):
            if str(guest) not in skipped:
                await self._open(Forward(guest, host_ip, host_port, "rule"))
        for guest_path, host_path in socket_rules(self.rules, self.base_dir):
            if guest_path not in skipped:
                await self._open(
                    Forward(0, "", 0, "rule", guest_socket=guest_path, host_socket=host_path)
                )
        for fwd in runtime:
            await self._open(fwd)

    async def close(self) -> None:
        """Close every listener and end the connections they carry."""
        if self._flusher:
            self._flusher.cancel()
        for fwd in self.forwards.values():
            if fwd.server:
                fwd.server.close()  # removes a socket file only if it is the one it bound
        for task in self._carriers:
            task.cancel()
        if self._carriers:
            await asyncio.wait(self._carriers, timeout=5)

    def snapshot(self) -> list[dict[str, Any]]:
        """Every forward as the ``forwards --json`` object."""
        return [f.to_json() for f in self.forwards.values()]

    def saved(self) -> dict[str, Any]:
        """What state.json keeps for the next start: the runtime adds and the removals."""
        return {
            "forwards": [
                {"spec": f"{f.guest_port}:{f.host_ip}:{f.host_port}"}
                for f in self.forwards.values()
                if f.source == "manual"
            ],
            "removed_forwards": sorted(self.removed),
        }

    def events(self) -> list[ForwardStatus]:
        """Current status events (for a new subscriber's backlog)."""
        return [f.event(self.instance) for f in self.forwards.values()]

    # --- changes ------------------------------------------------------------------------------

    async def sync_auto(self, listeners: set[Listener]) -> None:
        """Forward new guest listeners, drop auto forwards whose listener went away."""
        wanted: dict[str, tuple[int, str, int]] = {}
        for listener in listeners:
            target = auto_target(listener.port, self.rules)
            if target and str(listener.port) not in self.removed:
                wanted[str(listener.port)] = (listener.port, *target)
        for key, (guest, host_ip, host_port) in wanted.items():
            if key not in self.forwards:
                await self._open(Forward(guest, host_ip, host_port, "auto"))
        for key, fwd in list(self.forwards.items()):
            if fwd.source == "auto" and key not in wanted:
                self._drop(key)
            elif (
                fwd.state in ("conflict", "failed")
                and not fwd.guest_missing
                and time.monotonic() - fwd.last_try > RETRY_S
            ):
                await self._open(fwd)  # the host port may be free again

    def guest_sockets(self) -> list[str]:
        """The guest paths of the socket forwards (checked with :func:`guest_socket_probe`)."""
        return [f.guest_socket for f in self.forwards.values() if f.guest_socket]

    async def sync_guest_sockets(self, present: set[str]) -> None:
        """A socket forward whose guest path has no socket fails with that reason (its host
        socket is closed: nothing to carry); it opens again once the socket is there."""
        for fwd in list(self.forwards.values()):
            if fwd.guest_socket is None:
                continue
            if fwd.guest_socket in present and fwd.guest_missing:
                fwd.guest_missing = False
                await self._open(fwd)
            elif fwd.guest_socket not in present and not fwd.guest_missing:
                fwd.guest_missing = True
                if fwd.server:
                    fwd.server.close()
                    fwd.server = None
                fwd.state = "failed"
                fwd.reason = f"no socket at {fwd.guest_socket} in the guest"
                self._emit(fwd.event(self.instance))

    async def add(self, spec: str) -> dict[str, Any]:
        """A runtime forward (kept across restarts by the caller)."""
        guest, host_ip, host_port = parse_spec(spec)
        existing = self.forwards.get(str(guest))
        if existing and existing.source != "auto":
            raise UserInputError(
                f"guest port {guest} is already forwarded to {existing.host}",
                hint=f"remove it first: envdeck forward {self.instance} remove {guest}",
            )
        if existing:
            self._drop(existing.key)
        self.removed.discard(str(guest))
        fwd = Forward(guest, host_ip, host_port, "manual")
        await self._open(fwd)
        return fwd.to_json()

    def remove(self, guest: str) -> None:
        """Remove a forward by guest port (or socket path); it stays removed until added again."""
        if guest not in self.forwards:
            raise UserInputError(
                f"no forward for guest port {guest}", hint=f"see 'envdeck forwards {self.instance}'"
            )
        self._drop(guest)
        self.removed.add(guest)

    def _drop(self, key: str) -> None:
        fwd = self.forwards.pop(key)
        if fwd.server:
            fwd.server.close()
        self._emit(ForwardRemoved(instance=self.instance, guest=key))

    # --- listeners ----------------------------------------------------------------------------

    async def _open(self, fwd: Forward) -> None:
        self.forwards[fwd.key] = fwd
        fwd.last_try = time.monotonic()
        previous = (fwd.state, fwd.reason)
        try:
            bound = None
            if fwd.host_socket is not None:
                sock, bound = bind_unix(fwd.host_socket)
            else:
                sock = bind_tcp(fwd.host_ip, fwd.host_port)
            fwd.server = HostListener(sock, functools.partial(self._spawn_carrier, fwd), bound)
            fwd.state = "active"
            fwd.reason = None if fwd.host_socket is not None else exposure_warning(fwd.host_ip)
        except PathTaken as exc:
            fwd.state, fwd.reason = "conflict", exc.reason
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                fwd.state = "conflict"
                fwd.reason = f"{fwd.host} is already in use on the host"
            else:
                fwd.state = "failed"
                fwd.reason = f"cannot listen on {fwd.host}: {exc.strerror or exc}"
        if (fwd.state, fwd.reason) != previous:
            self._emit(fwd.event(self.instance))

    def _spawn_carrier(self, fwd: Forward, conn: socket.socket) -> None:
        task = asyncio.create_task(self._serve(fwd, conn))
        self._carriers.add(task)
        task.add_done_callback(self._carriers.discard)

    async def _serve(self, fwd: Forward, conn: socket.socket) -> None:
        """Carry one accepted connection: through the OpenSSH master if it is up, else asyncssh."""
        try:
            control = self._mux() if fwd.guest_socket is None else None
            if control is not None:
                try:
                    session = await ssh_mux.open_stdio_forward(control, "127.0.0.1", fwd.guest_port)
                except ssh_mux.MuxRefused:
                    fwd.refused += 1
                    conn.close()
                    return
                except ssh_mux.MuxError:
                    pass  # the master went away: asyncssh carries this one
                else:
                    await self._splice(fwd, conn, session)
                    return
            reader, writer = await asyncio.open_connection(sock=conn, limit=CHUNK)
        except BaseException:
            conn.close()
            raise
        await self._carry(fwd, reader, writer)

    async def _splice(
        self, fwd: Forward, conn: socket.socket, session: ssh_mux.StdioForward
    ) -> None:
        fwd.connections += 1
        self._dirty.add(fwd.key)

        def sent(n: int) -> None:
            fwd.bytes_out += n
            self._dirty.add(fwd.key)

        def received(n: int) -> None:
            fwd.bytes_in += n
            self._dirty.add(fwd.key)

        try:
            await splice_relay.relay(
                conn, session.to_guest, session.from_guest, session.end_to_guest, sent, received
            )
        finally:
            session.close()

    async def _guest_end(self, conn: Any, fwd: Forward) -> tuple[Any, Any]:
        """(reader, writer) to the guest side: a direct-tcpip channel, or socat for a socket
        (dropbear has no streamlocal channels)."""
        if fwd.guest_socket is None:
            return await conn.open_connection("127.0.0.1", fwd.guest_port, encoding=None)
        address = "UNIX-CONNECT:" + socat_escape(fwd.guest_socket)
        # -t: after one direction's EOF, socat keeps the other open this long (default 0.5 s):
        # `docker run` without -i half-closes at once and reads the output for the run's length
        process = await conn.create_process(
            f"exec socat -t {HALF_CLOSED_S} STDIO {shlex.quote(address)}", encoding=None
        )
        return process.stdout, process.stdin

    async def _carry(
        self, fwd: Forward, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        conn = self._conn()
        try:
            if conn is None:
                raise OSError("SSH to the guest is down")
            guest_reader, guest_writer = await self._guest_end(conn, fwd)
        except Exception:  # noqa: BLE001 - nothing listens in the guest, or SSH is down
            fwd.refused += 1
            writer.close()
            return
        fwd.connections += 1
        self._dirty.add(fwd.key)

        async def pump(src: Any, dst: Any, outbound: bool) -> None:
            try:
                while data := await src.read(CHUNK):
                    dst.write(data)
                    if outbound:
                        fwd.bytes_out += len(data)
                    else:
                        fwd.bytes_in += len(data)
                    self._dirty.add(fwd.key)
                    await dst.drain()
            except (ConnectionError, OSError, asyncssh.Error):
                pass  # (SSH lost: asyncssh's ConnectionLost) this connection is over
            finally:
                with contextlib.suppress(Exception):
                    if dst.can_write_eof():
                        dst.write_eof()
                    else:
                        dst.close()

        try:
            await asyncio.gather(
                pump(reader, guest_writer, True), pump(guest_reader, writer, False)
            )
        finally:
            writer.close()
            guest_writer.close()

    async def _flush_counters(self) -> None:
        """Publish changed counters at most once a second."""
        while True:
            await asyncio.sleep(1.0)
            dirty, self._dirty = self._dirty, set()
            for key in dirty:
                if key in self.forwards:
                    self._emit(self.forwards[key].event(self.instance))
