"""On-disk state of envdeck: the home dir, the image cache and one directory per instance.

Layout (``$ENVDECK_HOME``, default the platformdirs user data dir)::

    instances/NAME/            0700
        instance.yaml          the instance's config (a copy of what the user gave, never rewritten)
        state.json             runtime state the agent keeps (accel chosen, forwards added, ...)
        serial.log (+ .1 ...)  the serial console, size-capped with rotation
        events.jsonl           the agent's events (JSON Lines), size-capped with rotation
        agent.sock agent.pid agent.lock qemu.pid qmp.sock serial.sock   (owner-only)
        disk.qcow2 initrd.img  the instance's own disk overlay and initramfs
        cidata.iso efivars.fd  cloud images: the NoCloud seed and the UEFI variable store
        ssh/                   client key pair, guest host key, known_hosts (0600)

Files are written atomically (temp file + rename) so a crash never leaves half a file.
The home dir must belong to the user and be writable by nobody else (as OpenSSH demands of
~/.ssh): anyone who can write there could rewrite an instance's config or swap its sockets.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import stat
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import platformdirs

from envdeck.backend.errors import NotFound, UserInputError

NAME_RE = re.compile(r"[a-z0-9][a-z0-9._-]{0,62}")  # used with fullmatch: no trailing newline
NAME_HINT = (
    "use 1-63 characters: lower-case letters, digits, '.', '_' or '-',"
    " starting with a letter or digit"
)
#: sun_path holds 108 bytes with the terminating NUL
MAX_SOCKET_PATH = 107
#: the longest socket name envdeck binds in an instance's directory
LONGEST_SOCKET = "serial.sock"


def home() -> Path:
    """envdeck's data dir: ``$ENVDECK_HOME`` or the platform's user data dir (checked private)."""
    env = os.environ.get("ENVDECK_HOME")
    path = Path(env) if env else Path(platformdirs.user_data_dir("envdeck"))
    check_home(path)
    return path


def check_home(path: Path) -> None:
    """Refuse a home dir another user owns or can write (or, before it exists, one another user
    could swap: the nearest existing parent must be ours or root's and not writable by others,
    unless sticky like /tmp)."""
    uid = os.geteuid()
    try:
        info = path.stat()
    except FileNotFoundError:
        _check_parent(path, uid)
        return
    except OSError as exc:
        raise UserInputError(
            f"cannot check ENVDECK_HOME {path}: {exc.strerror}", hint="check the path"
        ) from None
    if not stat.S_ISDIR(info.st_mode):
        raise UserInputError(
            f"envdeck's home {path} is not a directory",
            hint="set ENVDECK_HOME to a directory of yours",
        )
    if info.st_uid != uid:
        raise UserInputError(
            f"envdeck's home {path} belongs to uid {info.st_uid}, not to you (uid {uid})",
            hint=f"chown {uid} {path} (if it is yours), or set ENVDECK_HOME to a dir of yours",
        )
    if info.st_mode & 0o022:
        raise UserInputError(
            f"envdeck's home {path} is writable by others (mode {info.st_mode & 0o777:o})",
            hint=f"chmod 700 {path}",
        )


def _check_parent(path: Path, uid: int) -> None:
    parent = path.parent
    while True:
        try:
            info = parent.stat()
            break
        except FileNotFoundError:
            parent = parent.parent
        except OSError:
            return  # mkdir will say what is wrong
    foreign = info.st_uid not in (uid, 0)
    loose = info.st_mode & 0o022 and not info.st_mode & stat.S_ISVTX
    if foreign or loose:
        raise UserInputError(
            f"envdeck's home {path} would be created in {parent}, which "
            + (f"belongs to uid {info.st_uid}" if foreign else "others can write"),
            hint=f"set ENVDECK_HOME to a directory of yours (or chmod go-w {parent})",
        )


def cache_dir() -> Path:
    """Where built and downloaded images are cached: ``$ENVDECK_CACHE`` or the user cache dir."""
    env = os.environ.get("ENVDECK_CACHE")
    return Path(env) if env else Path(platformdirs.user_cache_dir("envdeck"))


def config_dir() -> Path:
    """User config (config.yaml, user themes): ``$ENVDECK_CONFIG`` or the user config dir."""
    env = os.environ.get("ENVDECK_CONFIG")
    return Path(env) if env else Path(platformdirs.user_config_dir("envdeck"))


def ensure_private_dir(path: Path) -> Path:
    """Create ``path`` and any missing parents 0700, and make ``path`` 0700."""
    missing = [p for p in (path, *path.parents) if not p.exists()]
    for directory in reversed(missing):
        with contextlib.suppress(FileExistsError):
            directory.mkdir(mode=0o700)
    os.chmod(path, 0o700)
    return path


@contextlib.contextmanager
def atomic_output(
    path: Path, mode: int = 0o600, verify: Callable[[Path], object] | None = None
) -> Iterator[BinaryIO]:
    """A file to write ``path`` through: a temp file in the same dir, renamed over ``path``
    only when the block ends without an exception (then nothing is left behind).

    ``verify(temp path)`` runs on the complete file before the rename; it raises to refuse it."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        if verify is not None:
            verify(Path(tmp))
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def write_atomic(path: Path, data: bytes | str, mode: int = 0o600) -> None:
    """Write ``data`` to ``path`` via a temp file in the same dir, then rename."""
    with atomic_output(path, mode) as handle:
        handle.write(data.encode() if isinstance(data, str) else data)


def validate_name(name: str) -> str:
    """Return ``name`` if it is a valid instance name, else raise UserInputError."""
    if not NAME_RE.fullmatch(name or ""):
        raise UserInputError(f"invalid instance name {name!r}", hint=NAME_HINT)
    return name


@dataclass(frozen=True)
class InstanceDir:
    """Paths of one instance's directory."""

    name: str
    root: Path

    @classmethod
    def of(cls, name: str) -> InstanceDir:
        """The directory for ``name`` (validated; may not exist yet)."""
        validate_name(name)
        return cls(name, home() / "instances" / name)

    @classmethod
    def existing(cls, name: str) -> InstanceDir:
        """The directory of an instance that must exist, else NotFound (exit 2)."""
        inst = cls.of(name)
        if not inst.config.exists():
            raise NotFound(
                f"no instance named {name!r}",
                hint="see 'envdeck list', or create it with 'envdeck create " + name + "'",
            )
        return inst

    config = property(lambda self: self.root / "instance.yaml")
    state_file = property(lambda self: self.root / "state.json")
    serial_log = property(lambda self: self.root / "serial.log")
    events_log = property(lambda self: self.root / "events.jsonl")
    agent_sock = property(lambda self: self.root / "agent.sock")
    agent_pid = property(lambda self: self.root / "agent.pid")
    agent_lock = property(lambda self: self.root / "agent.lock")
    agent_log = property(lambda self: self.root / "agent.log")
    qemu_pid = property(lambda self: self.root / "qemu.pid")
    qmp_sock = property(lambda self: self.root / "qmp.sock")
    serial_sock = property(lambda self: self.root / "serial.sock")
    disk = property(lambda self: self.root / "disk.qcow2")
    initrd = property(lambda self: self.root / "initrd.img")
    seed = property(lambda self: self.root / "cidata.iso")  # cloud images: the NoCloud seed
    efi_vars = property(lambda self: self.root / "efivars.fd")  # cloud images: UEFI variables
    ssh_dir = property(lambda self: self.root / "ssh")
    client_key = property(lambda self: self.root / "ssh" / "id_ed25519")
    host_key = property(lambda self: self.root / "ssh" / "host_ed25519")
    known_hosts = property(lambda self: self.root / "ssh" / "known_hosts")

    def create(self) -> None:
        """Create the directory tree with private permissions.

        Refused (UserInputError) when the instance's final directory, ``<parent>/<name>`` (this
        one may be a staging dir), is too long a path for its unix sockets."""
        check_socket_room(self.root.parent / self.name)
        ensure_private_dir(self.root.parent)
        ensure_private_dir(self.root)
        ensure_private_dir(self.ssh_dir)

    def restrict_sockets(self) -> None:
        """Make QEMU's serial.sock and qmp.sock owner-only (QEMU creates them with the caller's
        umask; the directory is 0700 already). Call it once QEMU has created them."""
        for path in (self.serial_sock, self.qmp_sock):
            with contextlib.suppress(FileNotFoundError):
                os.chmod(path, 0o600)

    def read_state(self) -> dict[str, Any]:
        """The agent's persisted runtime state (empty dict if none or unreadable)."""
        try:
            return json.loads(self.state_file.read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            return {}

    def update_state(self, **changes: Any) -> dict[str, Any]:
        """Merge ``changes`` into state.json atomically; return the new state."""
        state = self.read_state()
        state.update(changes)
        write_atomic(self.state_file, json.dumps(state, indent=2, sort_keys=True))
        return state

    def update_state_if_room(self, **changes: Any) -> bool:
        """``update_state``, but a full disk is answered with False instead of raising (the
        agent must still see QEMU's exit when state.json cannot be written)."""
        try:
            self.update_state(**changes)
        except OSError as exc:
            if exc.errno not in (errno.ENOSPC, errno.EDQUOT):
                raise
            return False
        return True


def check_socket_room(root: Path) -> None:
    """Refuse an instance directory whose sockets would not fit in a unix socket address."""
    longest = len(os.fsencode(root / LONGEST_SOCKET))
    if longest <= MAX_SOCKET_PATH:
        return
    room = MAX_SOCKET_PATH - len(os.fsencode(root.parent / f"x/{LONGEST_SOCKET}")) + 1
    raise UserInputError(
        f"the instance directory {root} is too long for its unix sockets"
        f" ({root / LONGEST_SOCKET} is {longest} bytes; the limit is {MAX_SOCKET_PATH})",
        hint=(
            f"use a name of at most {room} characters here, or a shorter ENVDECK_HOME"
            if room > 0
            else "set ENVDECK_HOME to a shorter path"
        ),
    )


def list_instances() -> list[str]:
    """Names of every instance that has an instance.yaml, sorted."""
    root = home() / "instances"
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if (p / "instance.yaml").is_file())


@contextlib.contextmanager
def lock_file(path: Path, *, blocking: bool = False) -> Iterator[int]:
    """Hold an exclusive flock on ``path``; raise BlockingIOError if taken and not blocking."""
    import fcntl

    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
        yield fd
    finally:
        os.close(fd)
