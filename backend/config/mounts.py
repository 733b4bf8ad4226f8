"""Lima's ``mounts:``: host directories the guest sees, shared over virtio-9p.

Each entry is checked where it is written (``file:line:col``): the location is an absolute host
directory (``~`` and ``{{.Home}}`` are the host's home) taken literally, without ``..``; the
mount point an absolute guest path that hides nothing envdeck needs. Entries of different files
(``base:``) with the same mount point are combined as Lima does (the including file's fields
win); the same mount point twice in one file is an error. ``mountType: 9p`` (Lima's default for
QEMU) is what envdeck serves; ``virtiofs`` and ``reverse-sshfs`` are served over 9p too, with
one warning line saying so. The docker template shares the host user's home read-only at the
same path when the file has no ``mounts:`` (as Lima's docker template does).
"""

from __future__ import annotations

import getpass
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

import yaml

from envdeck.backend.config.variables import VariableError, expand

if TYPE_CHECKING:
    from envdeck.backend.config.schema import GuestUser, _Doc

Nodes = dict[str, tuple[yaml.Node, yaml.Node]]

MOUNT_TYPES = ("9p", "virtiofs", "reverse-sshfs", "default")
SECURITY_MODELS = ("none", "mapped-xattr", "mapped-file", "passthrough")
PROTOCOL_VERSIONS = ("9p2000", "9p2000.u", "9p2000.L")
CACHE_MODES = ("none", "loose", "fscache", "mmap")
MIN_MSIZE = 4 << 10
DEFAULT_MSIZE = 128 << 10
#: guest paths a mount may not cover: the system's own, and /root (envdeck logs in as root
#: with the key in /root/.ssh) and /data (the tiny guest's disk)
RESERVED = (
    "/", "/bin", "/boot", "/dev", "/etc", "/home", "/lib", "/lib64", "/opt", "/proc", "/root",
    "/run", "/sbin", "/sys", "/tmp", "/usr", "/var", "/data",
)  # fmt: skip
#: the templates that share the host user's home with the guest when the file has no mounts:
#: (Lima's docker template does), read-only: containers see host files at the same paths
HOME_TEMPLATES = ("docker",)
#: the mounts: ``envdeck create --mount-writable`` adds for such a template: the home, writable
WRITABLE_HOME = 'mounts:\n  - location: "~"\n    writable: true\n'
_ENTRY_KEYS = dict.fromkeys(("location", "mountPoint", "writable", "sshfs", "9p", "virtiofs"), "")
_NINEP_KEYS = dict.fromkeys(("securityModel", "protocolVersion", "msize", "cache"), "")
_SSHFS_KEYS = dict.fromkeys(("cache", "followSymlinks", "sftpDriver"), "")
_VIRTIOFS_KEYS = dict.fromkeys(("queueSize",), "")


@dataclass(frozen=True)
class Mount:
    """One host directory shared with the guest (defaults filled in)."""

    location: Path  # absolute, as the user named it (~ and variables expanded)
    mount_point: str  # absolute guest path
    writable: bool = False
    security_model: str = "none"
    protocol_version: str = "9p2000.L"
    msize: int = DEFAULT_MSIZE
    cache: str | None = None  # None: Lima's default, fscache read-only and mmap writable

    @property
    def cache_mode(self) -> str:
        return self.cache or ("mmap" if self.writable else "fscache")

    def as_json(self) -> dict[str, Any]:
        """The mount as ``list --json`` shows it."""
        return {
            "location": str(self.location),
            "mount_point": self.mount_point,
            "writable": self.writable,
            "type": "9p",
        }


@dataclass
class _Entry:
    """One ``mounts:`` entry as written: the fields it sets, each with its node."""

    node: yaml.Node
    location: Path
    mount_point: str
    fields: dict[str, tuple[Any, yaml.Node]]


def parse_mounts(
    doc: _Doc,
    keys: Nodes,
    user: GuestUser,
    warn: Callable[[yaml.Node, str], None],
) -> tuple[Mount, ...]:
    """The instance's mounts from ``mounts:`` and ``mountType:`` (both optional)."""
    if "mountType" in keys:
        _mount_type(doc, keys["mountType"], warn)
    if "mounts" not in keys:
        return _home_by_default(keys, user, warn)
    combined: dict[str, _Entry] = {}
    for node in doc.sequence(keys["mounts"][1], "mounts"):
        entry = _entry(doc, node, user, warn)
        first = combined.get(entry.mount_point)
        if first is None:
            combined[entry.mount_point] = entry
        elif first.node.start_mark.name == node.start_mark.name:
            raise doc.fail(
                node,
                f"mount point {entry.mount_point} is mounted twice"
                f" (first at {doc.where(first.node)})",
                "keep one entry per mountPoint, or set mountPoint: on one of them",
            )
        else:  # a base's entry: the including file's fields win, the others are added
            first.fields = {**entry.fields, **first.fields}
    mounts = []
    for entry in combined.values():
        if _reserved(doc, entry, user, warn):
            continue
        mounts.append(_mount(entry))
    return tuple(mounts)


def _home_by_default(
    keys: Nodes, user: GuestUser, warn: Callable[[yaml.Node, str], None]
) -> tuple[Mount, ...]:
    """A home-sharing template's default: the host user's home, read-only, at the same path in
    the guest (so ``docker run -v "$PWD":/src`` sees host files). Not when that path would
    hide one envdeck needs in the guest (as root, /root with envdeck's SSH key): one warning
    line says so and what to do instead."""
    template = keys.get("template")
    if template is None or getattr(template[1], "value", None) not in HOME_TEMPLATES:
        return ()
    home = Path(os.path.normpath(Path.home()))
    point = str(home)
    why = (
        "it is not a directory"
        if not home.is_dir()
        else "it would hide /root, where envdeck's SSH key is"
        if point == "/root"
        else "it would hide the guest user's home"
        if point == user.home
        else "it would hide a guest system directory"
        if point in RESERVED
        else None
    )
    if why is None:
        return (Mount(location=home, mount_point=point),)
    warn(
        template[0],
        f"template: {template[1].value} shares your home read-only, but {home} is not mounted"
        f" ({why}); share a folder with mounts:, e.g. '- location: /srv/work'"
        " (with 'writable: true' to write to it)",
    )
    return ()


def _mount_type(
    doc: _Doc, node: tuple[yaml.Node, yaml.Node], warn: Callable[[yaml.Node, str], None]
) -> None:
    kind = doc.choice(node[1], "mountType", MOUNT_TYPES)
    if kind in ("virtiofs", "reverse-sshfs"):
        warn(
            node[0],
            f"mountType: {kind} is served over 9p (envdeck shares folders with QEMU's"
            " virtio-9p only): the same folders, as writable as written",
        )


def _entry(
    doc: _Doc, node: yaml.Node, user: GuestUser, warn: Callable[[yaml.Node, str], None]
) -> _Entry:
    entry = doc.mapping(node, "a mounts entry", _ENTRY_KEYS)
    set_keys = {k: v for k, v in entry.items() if not _is_null(v[1])}
    if "location" not in set_keys:
        raise doc.fail(
            node, "a mounts entry has no location", "add 'location: ~/folder' (a host directory)"
        )
    loc_node = set_keys["location"][1]
    location = _location(doc, loc_node)
    fields: dict[str, tuple[Any, yaml.Node]] = {}
    if "mountPoint" in set_keys:
        point_node = set_keys["mountPoint"][1]
        point = doc.template(point_node, "mounts.mountPoint")
        _check_guest_path(doc, point_node, point)
        fields["mountPoint"] = (point, point_node)
    if "writable" in set_keys:
        value = doc.boolean(set_keys["writable"][1], "mounts.writable")
        fields["writable"] = (value, set_keys["writable"][1])
    if "9p" in set_keys:
        fields.update(_ninep(doc, set_keys["9p"][1]))
    for key, allowed in (("sshfs", _SSHFS_KEYS), ("virtiofs", _VIRTIOFS_KEYS)):
        if key in set_keys:
            options = doc.mapping(set_keys[key][1], f"mounts.{key}", allowed)
            if any(not _is_null(v) for _, v in options.values()):
                warn(set_keys[key][0], f"mounts.{key}: ignored: envdeck shares folders over 9p")
    point = fields["mountPoint"][0] if "mountPoint" in fields else str(location)
    if "mountPoint" not in fields:
        _check_guest_path(doc, loc_node, point)
    return _Entry(node, location, point, fields)


def _location(doc: _Doc, node: yaml.Node) -> Path:
    """The host directory, named literally: absolute, no '..', an existing directory."""
    text = doc.string(node, "mounts.location")
    host = _host_fields()
    resolve = doc.resolve
    if "{{" in text and resolve is not None:
        try:
            text = expand(text, lambda path: host.get(".".join(path)) or resolve(path))
        except VariableError as exc:
            raise doc.fail(
                node,
                f"mounts.location: {exc}",
                "known variables: {{.Home}}, {{.User}}, {{.UID}}, {{.Name}}, {{.Dir}},"
                " {{.Param.KEY}} (with KEY under param:)",
            ) from None
    if text == "~" or text.startswith("~/"):
        text = str(Path.home()) + text[1:]
    elif text.startswith("~"):
        raise doc.fail(
            node, f"mounts.location {text!r}: only ~ (your home) is expanded", "write the full path"
        )
    if not text.startswith("/"):
        raise doc.fail(
            node,
            f"mounts.location {text!r} is a relative path",
            "write an absolute host path, or one starting with ~",
        )
    if ".." in PurePosixPath(text).parts:
        raise doc.fail(
            node,
            f"mounts.location {text!r} contains '..'",
            "write the directory's path without '..' (it is shared exactly as named)",
        )
    path = Path(os.path.normpath(text))
    if not path.exists():
        raise doc.fail(
            node,
            f"mounts.location {text} does not exist",
            f"create it (mkdir -p {text}) or fix the path",
        )
    if not path.is_dir():
        raise doc.fail(
            node, f"mounts.location {text} is not a directory", "share a directory, not a file"
        )
    return path


def _host_fields() -> dict[str, str]:
    """The host-side template variables of a location (Lima's host template): the host user."""
    try:
        name = getpass.getuser()
    except (KeyError, OSError):
        name = str(os.getuid())
    return {"Home": str(Path.home()), "User": name, "UID": str(os.getuid())}


def _check_guest_path(doc: _Doc, node: yaml.Node, point: str) -> None:
    if not point.startswith("/"):
        raise doc.fail(
            node,
            f"mount point {point!r} is not an absolute guest path",
            "write mountPoint: as an absolute path such as /mnt/src (no ~: guest paths are"
            " not expanded)",
        )
    if ".." in PurePosixPath(point).parts or any(not c.isprintable() for c in point):
        raise doc.fail(
            node, f"mount point {point!r} has '..' or control characters", "write a plain path"
        )


def _reserved(
    doc: _Doc, entry: _Entry, user: GuestUser, warn: Callable[[yaml.Node, str], None]
) -> bool:
    """Whether the entry's mount point would hide a guest path envdeck needs: an error when
    mountPoint: says so, one warning line (and no mount) when it is the location's default."""
    point = os.path.normpath(entry.mount_point)
    if point not in (*RESERVED, user.home):
        return False
    why = (
        "the guest user's home"
        if point == user.home
        else "/root, where envdeck's SSH key is"
        if point == "/root"
        else "a guest system directory"
    )
    if "mountPoint" in entry.fields:
        raise doc.fail(
            entry.fields["mountPoint"][1],
            f"mount point {point} would hide {why}",
            "mount it elsewhere, e.g. mountPoint: /mnt/host",
        )
    warn(
        entry.node,
        f"mounts: {entry.location} is not mounted: its mount point (the same path) would hide"
        f" {why}; add 'mountPoint: /mnt/...' to mount it elsewhere",
    )
    return True


def _ninep(doc: _Doc, node: yaml.Node) -> dict[str, tuple[Any, yaml.Node]]:
    options = doc.mapping(node, "mounts.9p", _NINEP_KEYS)
    found: dict[str, tuple[Any, yaml.Node]] = {}
    for key, (_, value) in options.items():
        if _is_null(value):
            continue
        what = f"mounts.9p.{key}"
        if key == "securityModel":
            found[key] = (doc.choice(value, what, SECURITY_MODELS), value)
        elif key == "protocolVersion":
            found[key] = (doc.choice(value, what, PROTOCOL_VERSIONS), value)
        elif key == "cache":
            found[key] = (doc.choice(value, what, CACHE_MODES), value)
        else:
            size = doc.size(value, what)
            if size < MIN_MSIZE:
                raise doc.fail(value, f"{what} is {size} bytes", "use at least 4KiB, e.g. 128KiB")
            found[key] = (size, value)
    return found


def _mount(entry: _Entry) -> Mount:
    def field(key: str, default: Any) -> Any:
        return entry.fields[key][0] if key in entry.fields else default

    return Mount(
        location=entry.location,
        mount_point=os.path.normpath(entry.mount_point),
        writable=field("writable", False),
        security_model=field("securityModel", "none"),
        protocol_version=field("protocolVersion", "9p2000.L"),
        msize=field("msize", DEFAULT_MSIZE),
        cache=field("cache", None),
    )


def _is_null(node: yaml.Node) -> bool:
    return isinstance(node, yaml.ScalarNode) and node.tag.endswith(":null")
