"""Instance YAML: a Lima-compatible subset, its defaults and its validation.

Every error is a :class:`ConfigError` that names the file, line and column (1-based) of the
offending node and says how to fix it. Parsing never writes anything and never rewrites the
user's file.
"""

from __future__ import annotations

import dataclasses
import getpass
import ipaddress
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import psutil
import yaml

from envdeck.backend.arch import host_arch
from envdeck.backend.config import compose, guest_keys, yq
from envdeck.backend.config.errors import ConfigError
from envdeck.backend.config.lima_keys import (
    LIMA_KEYS,
    LIMA_VERSION,
    SSH_HONOURED,
    SSH_WARNED,
    asks_for_something,
    version_tuple,
)
from envdeck.backend.config.mounts import Mount, parse_mounts
from envdeck.backend.config.variables import VariableError, expand

ARCHES = ("x86_64", "aarch64")
#: Every arch Lima names (cpuType keys, image entries); envdeck runs the ones in ARCHES.
ARCHES_ALL = ("x86_64", "aarch64", "armv7l", "ppc64le", "riscv64", "s390x")
ACCELS = ("auto", "kvm", "tcg", "hvf")
TEMPLATES = ("tiny", "docker")
#: The docker template: what its guest gets unless the file or the command line says otherwise
#: (dockerd, containerd and cloud-init want more than the tiny guest's 512MiB).
DOCKER_DEFAULTS: dict[str, Any] = {"cpus": 2, "memory_bytes": 2 << 30, "disk_bytes": 16 << 30}
#: The guest's docker socket, forwarded to docker.sock in the instance's directory.
DOCKER_GUEST_SOCKET = "/var/run/docker.sock"
DOCKER_HOST_SOCKET = "docker.sock"
#: Lima's provision modes, in the order Lima runs them at boot
PROVISION_MODES = ("boot", "dependency", "data", "yq", "system", "user")
OS_REFUSED = {
    "Darwin": "macOS guests need Apple's Virtualization.framework on a macOS host",
    "FreeBSD": "envdeck runs Linux guests only (it reads their processes and boot stages)",
    "Windows": "envdeck runs Linux guests only",
}
VM_TYPES_REFUSED = {
    "vz": "Apple's Virtualization.framework exists only on macOS hosts",
    "krunkit": "krunkit runs only on macOS hosts",
    "wsl2": "WSL2 exists only on Windows hosts",
}
#: deeper YAML nesting than this is refused (no instance file needs more than a handful)
MAX_DEPTH = 64
#: guestIP values whose meaning envdeck already honours: it reaches guest services through the
#: guest's 127.0.0.1, which serves listeners bound to 127.0.0.1 and to 0.0.0.0
GUEST_IPS = ("127.0.0.1", "0.0.0.0")
#: the largest disk envdeck creates (a qcow2 overlay grows on demand; this is its virtual size)
MAX_DISK = 64 << 40

_SIZE_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([KMGT]i?B?|B)?\s*$", re.IGNORECASE)
_UNITS = {"": 1, "B": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}


@dataclass(frozen=True)
class PortForwardRule:
    """One Lima-style ``portForwards`` entry."""

    guest_port_range: tuple[int, int] | None = None
    host_port_range: tuple[int, int] | None = None
    host_ip: str = "127.0.0.1"
    proto: str = "tcp"
    ignore: bool = False
    guest_socket: str | None = None
    host_socket: str | None = None


@dataclass(frozen=True)
class ProvisionStep:
    """One Lima ``provision:`` entry: a script (boot, dependency, system, user), a file to
    write (data) or a yq expression to apply to a file (yq)."""

    mode: str
    script: str = ""
    path: str | None = None
    content: str | None = None
    expression: str | None = None
    file_format: str = "auto"
    owner: str | None = None
    permissions: str | None = None
    overwrite: bool = True


@dataclass(frozen=True)
class ProbeSpec:
    """A readiness probe: a script run as the guest user until it succeeds."""

    script: str
    description: str
    hint: str | None = None


@dataclass(frozen=True)
class GuestUser:
    """The guest account ``mode: user`` scripts and probes run as (Lima's ``user:``)."""

    name: str
    uid: int
    home: str
    shell: str = "/bin/bash"


@dataclass(frozen=True)
class KernelSpec:
    """A user-supplied kernel (and optional initrd) instead of the built-in tiny image."""

    path: Path
    initrd: Path | None = None
    cmdline: str | None = None


@dataclass(frozen=True)
class ImageSpec:
    """A cloud image (Lima's ``images:`` entry): a disk image fetched by URL, checked by digest."""

    location: str
    arch: str = "x86_64"
    digest: str | None = None  # "sha256:<hex>" or "sha512:<hex>"


@dataclass(frozen=True)
class InstanceConfig:
    """A validated instance definition with defaults filled in."""

    template: str | None = "tiny"
    arch: str = "x86_64"
    cpus: int = 1
    memory_bytes: int = 512 << 20
    disk_bytes: int = 1 << 30
    accel: str = "auto"
    kernel: KernelSpec | None = None
    images: tuple[ImageSpec, ...] = field(default_factory=tuple)
    ssh_local_port: int = 0
    port_forwards: tuple[PortForwardRule, ...] = field(default_factory=tuple)
    provision: tuple[ProvisionStep, ...] = field(default_factory=tuple)
    cpu_type: dict[str, str] = field(default_factory=dict)  # arch -> QEMU -cpu model (Lima's)
    probes: tuple[ProbeSpec, ...] = field(default_factory=tuple)
    message: str | None = None
    env: tuple[tuple[str, str], ...] = field(default_factory=tuple)
    param: tuple[tuple[str, str], ...] = field(default_factory=tuple)
    user: GuestUser | None = None
    mounts: tuple[Mount, ...] = field(default_factory=tuple)  # host folders over 9p
    guest: guest_keys.GuestKeys = field(default_factory=guest_keys.GuestKeys)  # plain, copyToHost..

    @property
    def docker(self) -> bool:
        """The docker template: a Debian guest running dockerd, its socket forwarded."""
        return self.template == "docker"

    @property
    def boots_disk(self) -> bool:
        """A UEFI guest that boots its own disk and reads a cloud-init seed (a cloud image or
        the docker template's Debian image), not a kernel envdeck hands to QEMU."""
        return bool(self.images) or self.docker


def template_defaults(template: str) -> InstanceConfig:
    """The defaults of an instance of ``template`` (the docker template's are larger)."""
    extra = DOCKER_DEFAULTS if template == "docker" else {}
    return InstanceConfig(template=template, **extra)


def parse_size(text: str | int) -> int:
    """'512MiB' / '2G' / 1048576 -> bytes (binary units, as Lima). Raises ValueError."""
    if isinstance(text, bool):
        raise ValueError("a size, not a boolean")
    if isinstance(text, int):
        if text <= 0:
            raise ValueError("must be positive")
        return text
    match = _SIZE_RE.match(str(text))
    if not match:
        raise ValueError(f"{text!r} is not a size")
    number, unit = match.groups()
    multiplier = _UNITS[(unit or "")[:1].upper()]
    value = int(Fraction(number) * multiplier)  # exact: no float overflow for long numbers
    if value <= 0:
        raise ValueError("must be positive")
    return value


def format_size(n: int) -> str:
    """Bytes -> the shortest exact binary form ('512MiB', '1GiB', '1000B')."""
    for unit, mult in (("TiB", 1 << 40), ("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n % mult == 0:
            return f"{n // mult}{unit}"
    return f"{n}B"


def show(value: Any) -> str:
    """A YAML value as the user would write it in a message: null, true, 'text', 12."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    return repr(value) if isinstance(value, str) else str(value)


def host_memory() -> int:
    """The host's RAM in bytes: the most memory a guest may be given."""
    return int(psutil.virtual_memory().total)


# --- node-level validation ---------------------------------------------------------------


class _Loader(yaml.SafeLoader):
    """SafeLoader that refuses nesting deeper than MAX_DEPTH (the composer recurses per level)."""

    depth = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        self.depth += 1
        try:
            if self.depth > MAX_DEPTH:
                raise yaml.composer.ComposerError(
                    None,
                    None,
                    f"nested deeper than {MAX_DEPTH} levels",
                    self.peek_event().start_mark,
                )
            return super().compose_node(parent, index)
        finally:
            self.depth -= 1


_DECIMAL_RE = re.compile(r"0|[1-9][0-9]*")


class _Doc:
    """Helpers that validate YAML nodes and raise errors with their position."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.resolve: Callable[[list[str]], Any] | None = None

    def template(self, node: yaml.Node, what: str) -> str:
        """A string with Lima's template variables expanded (an unknown one is an error)."""
        text = self.string(node, what)
        if self.resolve is None:
            return text
        try:
            return expand(text, self.resolve)
        except VariableError as exc:
            raise self.fail(
                node,
                f"{what}: {exc}",
                "known variables: {{.Name}}, {{.Dir}}, {{.Home}}, {{.User}}, {{.UID}},"
                " {{.Hostname}}, {{.Param.KEY}} (with KEY under param:)",
            ) from None

    def where(self, node: yaml.Node) -> str:
        return compose.where(node)  # the mark names the file the node is in (bases too)

    def fail(self, node: yaml.Node, message: str, hint: str) -> ConfigError:
        return ConfigError(message, hint=hint, where=self.where(node))

    def mapping(
        self, node: yaml.Node, what: str, allowed: dict[str, str]
    ) -> dict[str, tuple[yaml.Node, yaml.Node]]:
        """Check ``node`` is a mapping with only ``allowed`` keys; return key -> (key, value)."""
        if not isinstance(node, yaml.MappingNode):
            raise self.fail(node, f"{what} must be a mapping", "write it as 'key: value' lines")
        result: dict[str, tuple[yaml.Node, yaml.Node]] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                raise self.fail(
                    key_node, f"{what}: keys must be plain names", "use a plain word as key"
                )
            key = key_node.value
            if key in result:
                raise self.fail(
                    key_node, f"duplicate key {key!r} in {what}", "keep only one of them"
                )
            if key not in allowed:
                raise self.fail(
                    key_node,
                    f"unknown key {key!r} in {what}",
                    _suggest(key, allowed),
                )
            result[key] = (key_node, value_node)
        return result

    def scalar(self, node: yaml.Node, what: str) -> Any:
        if not isinstance(node, yaml.ScalarNode):
            raise self.fail(
                node, f"{what} must be a single value", "write a plain value, not a list or mapping"
            )
        try:
            return yaml.constructor.SafeConstructor().construct_object(node, deep=True)
        except (yaml.YAMLError, ValueError, TypeError, OverflowError) as exc:
            raise self.fail(node, f"{what} cannot be read: {exc}", "write a plain value") from None

    def choice(self, node: yaml.Node, what: str, choices: tuple[str, ...]) -> str:
        value = self.scalar(node, what)
        if not isinstance(value, str) or value not in choices:
            raise self.fail(node, f"{what} is {show(value)}", "use one of: " + ", ".join(choices))
        return value

    def integer(self, node: yaml.Node, what: str, low: int, high: int) -> int:
        value = self.scalar(node, what)
        is_int = isinstance(value, int) and not isinstance(value, bool)
        plain = isinstance(node, yaml.ScalarNode) and node.style is None
        if is_int and plain and not _DECIMAL_RE.fullmatch(node.value):
            # YAML 1.1 reads 010 as 8, 0x10 as 16 and 1:20 as 80: refuse rather than guess
            raise self.fail(
                node,
                f"{what} is written {node.value!r}, which YAML would read as {value}",
                "write it as a plain decimal number without a leading zero or sign",
            )
        if not is_int or not low <= value <= high:
            raise self.fail(
                node, f"{what} is {show(value)}", f"use a whole number from {low} to {high}"
            )
        return int(value)

    def boolean(self, node: yaml.Node, what: str) -> bool:
        value = self.scalar(node, what)
        if not isinstance(value, bool):
            raise self.fail(node, f"{what} is {show(value)}", "use true or false")
        return value

    def string(self, node: yaml.Node, what: str) -> str:
        value = self.scalar(node, what)
        if not isinstance(value, str) or not value:
            raise self.fail(node, f"{what} must be a non-empty string", "quote the text if needed")
        return value

    def size(self, node: yaml.Node, what: str) -> int:
        value = self.scalar(node, what)
        try:
            return parse_size(value)
        except (ValueError, TypeError) as exc:
            raise self.fail(
                node,
                f"{what} is {show(value)}: {exc}",
                "use a size such as 512MiB, 2GiB or 1073741824",
            ) from None

    def sequence(self, node: yaml.Node, what: str) -> list[yaml.Node]:
        if not isinstance(node, yaml.SequenceNode):
            raise self.fail(
                node, f"{what} must be a list", "write each entry on a line starting with '- '"
            )
        return list(node.value)


def _suggest(key: str, allowed: dict[str, str]) -> str:
    close = [k for k in allowed if k.lower() == key.lower() or _edit_distance(k, key) <= 2]
    known = ", ".join(sorted(allowed))
    return (f"did you mean {close[0]!r}? " if close else "") + f"known keys: {known}"


def _edit_distance(a: str, b: str) -> int:
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i]
        for j, cb in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
        prev = cur
    return prev[-1]


ENVDECK_KEYS = {
    "template": "built-in image",
    "accel": "accelerator",
    "kernel": "custom kernel",
}
TOP_KEYS = {**ENVDECK_KEYS, **{key: info.why for key, info in LIMA_KEYS.items()}}

#: The architectures the built-in tiny template is built for.
TINY_ARCHES: tuple[str, ...] = ("x86_64", "aarch64")
_CPU_MODEL = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.+=,-]*")


def _port_range(doc: _Doc, node: yaml.Node, what: str) -> tuple[int, int]:
    items = doc.sequence(node, what)
    if len(items) != 2:
        raise doc.fail(node, f"{what} must have two ports", "write it as [FIRST, LAST]")
    low = doc.integer(items[0], what, 1, 65535)
    high = doc.integer(items[1], what, 1, 65535)
    if low > high:
        raise doc.fail(
            node, f"{what} is [{low}, {high}]", "the first port must not exceed the last"
        )
    return (low, high)


_FORWARD_KEYS = dict.fromkeys(
    (
        "guestPort",
        "guestPortRange",
        "hostPort",
        "hostPortRange",
        "hostIP",
        "proto",
        "ignore",
        "guestSocket",
        "hostSocket",
        "guestIP",
        "static",  # plain mode keeps these (guest_keys)
    ),
    "",
)


def _forward(doc: _Doc, node: yaml.Node) -> PortForwardRule:
    keys = doc.mapping(node, "a portForwards entry", _FORWARD_KEYS)
    get = {k: v for k, (_, v) in keys.items()}
    guest_range = host_range = None
    if "guestPort" in get:
        port = doc.integer(get["guestPort"], "guestPort", 1, 65535)
        guest_range = (port, port)
    if "guestPortRange" in get:
        guest_range = _port_range(doc, get["guestPortRange"], "guestPortRange")
    if "hostPort" in get:
        port = doc.integer(get["hostPort"], "hostPort", 1, 65535)
        host_range = (port, port)
    if "hostPortRange" in get:
        host_range = _port_range(doc, get["hostPortRange"], "hostPortRange")
    guest_socket = doc.template(get["guestSocket"], "guestSocket") if "guestSocket" in get else None
    host_socket = _host_socket(doc, get["hostSocket"]) if "hostSocket" in get else None
    if "guestIP" in get:
        guest_ip = doc.string(get["guestIP"], "guestIP")
        if guest_ip not in GUEST_IPS:
            raise doc.fail(
                get["guestIP"],
                f"guestIP {guest_ip!r} is not supported: envdeck reaches guest services through"
                " the guest's 127.0.0.1 (listeners on 127.0.0.1 or 0.0.0.0)",
                "remove guestIP:, or bind the guest service to 127.0.0.1 or 0.0.0.0",
            )
    if guest_socket is None and guest_range is None:
        raise doc.fail(
            node,
            "a port forward needs guestPort, guestPortRange or guestSocket",
            "add e.g. 'guestPort: 80'",
        )
    if (guest_socket is None) != (host_socket is None):
        raise doc.fail(node, "guestSocket and hostSocket go together", "set both, or neither")
    if (
        guest_range
        and host_range
        and (guest_range[1] - guest_range[0]) != (host_range[1] - host_range[0])
    ):
        raise doc.fail(
            node,
            "hostPortRange and guestPortRange differ in length",
            "make both ranges cover the same number of ports",
        )
    host_ip = "127.0.0.1"
    if "hostIP" in get:
        host_ip = doc.string(get["hostIP"], "hostIP")
        try:
            ipaddress.ip_address(host_ip)
        except ValueError:
            raise doc.fail(
                get["hostIP"],
                f"hostIP {host_ip!r} is not an IP address",
                "use 127.0.0.1 (default) or an address of this host",
            ) from None
    proto = "tcp"
    if "proto" in get:
        proto = str(doc.scalar(get["proto"], "proto")).lower()
        if proto in ("udp", "any"):
            raise doc.fail(
                get["proto"],
                f"proto: {proto} is not supported: envdeck forwards TCP (QEMU user networking"
                " reaches guest UDP services only through fixed hostfwd rules)",
                "use proto: tcp, or remove the entry",
            )
        proto = doc.choice(get["proto"], "proto", ("tcp", "TCP")).lower()
    ignore = doc.boolean(get["ignore"], "ignore") if "ignore" in get else False
    return PortForwardRule(
        guest_range, host_range or guest_range, host_ip, proto, ignore, guest_socket, host_socket
    )


def _host_socket(doc: _Doc, node: yaml.Node) -> str:
    """A hostSocket path; a relative one must stay inside the instance's directory."""
    text = doc.template(node, "hostSocket")
    path = Path(text).expanduser()
    if not path.is_absolute() and ".." in path.parts:
        raise doc.fail(
            node,
            f"hostSocket {text!r} leaves the instance's directory",
            "use a plain name such as 'docker.sock' (it lives in the instance's directory),"
            " or an absolute path",
        )
    if "\0" in text:
        raise doc.fail(node, "hostSocket contains a NUL character", "use a plain file name")
    return text


_PROVISION_KEYS = dict.fromkeys(
    (
        "mode",
        "script",
        "path",
        "content",
        "expression",
        "format",
        "owner",
        "permissions",
        "overwrite",
        "user",
        "file",
        "skipDefaultDependencyResolution",
    ),
    "",
)
_NEEDS = {"data": ("path", "content"), "yq": ("path", "expression")}


def _provision(doc: _Doc, node: yaml.Node) -> ProvisionStep:
    keys = doc.mapping(node, "a provision entry", _PROVISION_KEYS)
    get = {k: v for k, (_, v) in keys.items() if not compose.is_null(v)}
    mode = doc.choice(get["mode"], "mode", PROVISION_MODES) if "mode" in get else "system"
    if "file" in get:
        raise doc.fail(
            keys["file"][0],
            "provision file: is not supported: envdeck keeps the script in the instance file",
            "paste the file's content under 'script: |'",
        )
    for needed in _NEEDS.get(mode, ("script",)):
        if needed not in get:
            raise doc.fail(
                node, f"a provision entry of mode {mode} needs {needed}:", f"add '{needed}:'"
            )
    step = ProvisionStep(mode)
    if "script" in get:
        step = dataclasses.replace(step, script=doc.template(get["script"], "script"))
    texts = {
        key: doc.template(get[key], key) for key in ("path", "owner", "expression") if key in get
    }
    step = dataclasses.replace(
        step, path=texts.get("path"), owner=texts.get("owner"), expression=texts.get("expression")
    )
    if "content" in get:
        step = dataclasses.replace(step, content=doc.template(get["content"], "content"))
    if step.path is not None and not step.path.startswith("/"):
        raise doc.fail(get["path"], f"path {step.path!r} is not absolute", "write a full path")
    if "permissions" in get:
        perms = str(doc.scalar(get["permissions"], "permissions"))
        if not re.fullmatch(r"0?[0-7]{3,4}", perms):
            raise doc.fail(get["permissions"], f"permissions {perms!r}", "write octal, e.g. 644")
        step = dataclasses.replace(step, permissions=perms)
    if "overwrite" in get:
        step = dataclasses.replace(step, overwrite=doc.boolean(get["overwrite"], "overwrite"))
    if "format" in get:
        fmt = doc.choice(get["format"], "format", yq.FORMATS)
        step = dataclasses.replace(step, file_format=fmt)
    if mode == "yq":
        try:
            yq.parse(step.expression or "")
            yq.format_of(step.path or "", step.file_format)
        except yq.YqError as exc:
            raise doc.fail(get["expression"], f"yq expression: {exc}", yq.HINT) from None
    return step


def _probe(doc: _Doc, node: yaml.Node, index: int) -> ProbeSpec:
    keys = doc.mapping(
        node, "a probes entry", dict.fromkeys(("mode", "script", "hint", "description", "file"), "")
    )
    get = {k: v for k, (_, v) in keys.items() if not compose.is_null(v)}
    if "mode" in get:
        doc.choice(get["mode"], "probe mode", ("readiness",))
    if "file" in get:
        raise doc.fail(get["file"], "probe file: is not supported", "paste it under 'script: |'")
    if "script" not in get:
        raise doc.fail(node, "a probe needs a script", "add 'script: |' and the check")
    script = doc.template(get["script"], "script")
    description = doc.template(get["description"], "description") if "description" in get else ""
    hint = doc.template(get["hint"], "hint") if "hint" in get else None
    return ProbeSpec(script, description or f"probe {index}", hint)


_DIGEST_RE = re.compile(r"^(sha256:[0-9a-f]{64}|sha512:[0-9a-f]{128})$")
_LOCATION_SCHEMES = ("http://", "https://", "file://", "/", "~")
_IMAGE_KEYS = dict.fromkeys(
    ("location", "arch", "digest", "variant", "archVariant", "kernel", "initrd"), ""
)


def _location(doc: _Doc, node: yaml.Node, what: str) -> str:
    location = doc.string(node, what)
    if not location.startswith(_LOCATION_SCHEMES):
        raise doc.fail(
            node,
            f"{what} {location!r} is not a URL or an absolute path",
            "use http://, https://, file:// or a path (relative paths are from the YAML's"
            " folder, so they need 'create -f FILE')",
        )
    return location


def _digest(doc: _Doc, node: yaml.Node) -> str:
    digest = doc.string(node, "digest").strip().lower()
    if not _DIGEST_RE.match(digest):
        raise doc.fail(
            node,
            "digest is not 'sha256:' and 64 hex digits or 'sha512:' and 128",
            "copy it from the image's SHA256SUMS or SHA512SUMS, e.g. sha256:3b0c...",
        )
    return digest


def _image(doc: _Doc, node: yaml.Node) -> tuple[ImageSpec, yaml.Node | None]:
    """An images entry, and its kernel:/initrd: node if it has one (boots the kernel)."""
    keys = doc.mapping(node, "an images entry", _IMAGE_KEYS)
    if "location" not in keys:
        raise doc.fail(
            node,
            "an image needs a location",
            "add 'location: https://.../image.qcow2' (or a local path)",
        )
    location = _location(doc, keys["location"][1], "location")
    arch = doc.choice(keys["arch"][1], "arch", ARCHES_ALL) if "arch" in keys else "x86_64"
    digest = _digest(doc, keys["digest"][1]) if "digest" in keys else None
    for key in ("variant", "archVariant"):
        if key in keys and not compose.is_null(keys[key][1]):
            doc.string(keys[key][1], key)
    kernel = None
    for key in ("kernel", "initrd"):
        if key in keys and not compose.is_null(keys[key][1]):
            sub = doc.mapping(
                keys[key][1], key, dict.fromkeys(("location", "digest", "cmdline"), "")
            )
            if "location" not in sub:
                raise doc.fail(keys[key][1], f"{key} needs a location", "add 'location:'")
            _location(doc, sub["location"][1], f"{key}.location")
            if "digest" in sub:
                _digest(doc, sub["digest"][1])
            kernel = kernel or keys[key][0]
    return ImageSpec(location, arch, digest), kernel


def _kernel(doc: _Doc, node: yaml.Node, base: Path) -> KernelSpec:
    keys = doc.mapping(node, "kernel", {"path": "", "initrd": "", "cmdline": ""})
    if "path" not in keys:
        raise doc.fail(
            node,
            "kernel needs a path",
            "add 'path: /path/to/vmlinuz', or remove kernel: to use the tiny image",
        )

    def existing(key: str) -> Path:
        value_node = keys[key][1]
        path = Path(doc.string(value_node, f"kernel.{key}")).expanduser()
        path = path if path.is_absolute() else base / path
        if not path.is_file():
            raise doc.fail(
                value_node,
                f"kernel.{key}: {path} does not exist",
                "give the path of an existing file (relative paths are from the YAML's folder)",
            )
        return path

    return KernelSpec(
        path=existing("path"),
        initrd=existing("initrd") if "initrd" in keys else None,
        cmdline=doc.string(keys["cmdline"][1], "kernel.cmdline") if "cmdline" in keys else None,
    )


_FIELD_PARSERS: dict[str, Callable[[_Doc, yaml.Node], tuple[str, Any]]] = {
    "template": lambda d, n: ("template", d.choice(n, "template", TEMPLATES)),
    "arch": lambda d, n: ("arch", d.choice(n, "arch", (*ARCHES, "default"))),
    "cpus": lambda d, n: ("cpus", d.integer(n, "cpus", 1, 64)),
    "memory": lambda d, n: ("memory_bytes", d.size(n, "memory")),
    "disk": lambda d, n: ("disk_bytes", d.size(n, "disk")),
    "accel": lambda d, n: ("accel", d.choice(n, "accel", ACCELS)),
}


def _cpu_type(doc: _Doc, node: yaml.Node) -> dict[str, str]:
    """Lima's ``cpuType``: a QEMU ``-cpu`` model per guest arch (empty or null: the default)."""
    models = doc.mapping(node, "cpuType", dict.fromkeys(ARCHES_ALL, "a QEMU -cpu model"))
    chosen: dict[str, str] = {}
    for arch, (_, value) in models.items():
        if isinstance(value, yaml.ScalarNode) and (
            value.tag.endswith(":null") or value.value == ""
        ):
            continue  # null or "": QEMU's default for that arch, as in Lima
        model = doc.string(value, f"cpuType.{arch}")
        if model and not _CPU_MODEL.fullmatch(model):
            raise doc.fail(
                value,
                f"cpuType.{arch} {model!r} is not a QEMU CPU model",
                "write a model name as 'qemu-system-ARCH -cpu help' lists it, e.g. cortex-a72",
            )
        if model:
            chosen[arch] = model
    return chosen


@dataclass(frozen=True)
class Checked:
    """What validation found: the config, what is honoured and ignored, the image it uses,
    and the composed document (bases merged in) that ``create`` keeps."""

    config: InstanceConfig
    honoured: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()
    image: ImageSpec | None = None
    composed: str = ""  # with bases merged in (the file as written when it has none)


def read_yaml(text: str, source: str) -> yaml.Node | None:
    """``text`` as a YAML node tree whose marks name ``source``; ConfigError with a position."""
    try:
        loader = _Loader(text)
        loader.name = source  # every mark of this document names its file
        try:
            return loader.get_single_node()
        finally:
            loader.dispose()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{source}:{mark.line + 1}:{mark.column + 1}" if mark else source
        raise ConfigError(
            f"not valid YAML: {exc.problem or exc.context}",
            where=where,
            hint="check indentation and quoting near that position",
        ) from None
    except yaml.YAMLError as exc:
        raise ConfigError(
            f"not valid YAML: {exc}", where=source, hint="check the file's syntax"
        ) from None
    except (ValueError, UnicodeError) as exc:
        raise ConfigError(
            f"not readable as YAML text: {exc}", where=source, hint="save the file as UTF-8 text"
        ) from None
    except RecursionError:
        raise ConfigError(
            "the YAML is nested too deeply", where=source, hint="flatten the document"
        ) from None


def parse_config(
    text: str, source: str = "<string>", base_dir: Path | None = None, *, name: str | None = None
) -> InstanceConfig:
    """Validate instance YAML ``text``; raise ConfigError (``file:line:col``) on any problem."""
    return check_config(text, source, base_dir, name=name).config


def check_config(
    text: str, source: str = "<string>", base_dir: Path | None = None, *, name: str | None = None
) -> Checked:
    """Compose ``text`` with its bases and validate it for instance ``name`` (default: the
    file's name, as Lima does); nothing is written."""
    root = read_yaml(text, source)
    if root is None:
        return Checked(InstanceConfig(), composed=text)
    has_bases = compose.has_bases(root)
    root = compose.compose(root, compose.Origin(source, base_dir), read_yaml)
    checked = _Checker(root, name or instance_name_of(source), base_dir).run()
    return checked if has_bases else dataclasses.replace(checked, composed=text)


def instance_name_of(source: str) -> str:
    """The instance name a file stands for: its stem, or its folder for an instance's copy."""
    path = Path(source)
    if path.name == "instance.yaml" and path.parent.parent.name == "instances":
        return path.parent.name
    return path.stem if path.suffix in (".yaml", ".yml") else path.name


_LINUX_NAME = re.compile(r"[a-z_][a-z0-9_-]{0,31}")
_PARAM_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]*")


def default_user() -> GuestUser:
    """Lima's default guest account: the host user's name and uid (``lima``/1000 for root)."""
    try:
        name = getpass.getuser()
    except (KeyError, OSError):
        name = "lima"
    if not _LINUX_NAME.fullmatch(name) or name == "root":
        name = "lima"
    uid = os.getuid() if os.getuid() >= 1000 else 1000
    return GuestUser(name, uid, f"/home/{name}.linux")


def _plain(node: yaml.Node) -> Any:
    try:
        return yaml.constructor.SafeConstructor().construct_document(node)
    except (yaml.YAMLError, ValueError, TypeError, OverflowError, RecursionError):
        return True  # unreadable: treat as set


class _Checker:
    """One composed document checked key by key."""

    def __init__(self, root: yaml.Node, name: str, base_dir: Path | None) -> None:
        self.doc = _Doc(compose.where(root).rsplit(":", 2)[0])
        self.root = root
        self.name = name
        self.base_dir = base_dir
        self.honoured: list[str] = []
        self.warnings: list[str] = []

    def warn(self, node: yaml.Node, text: str) -> None:
        self.warnings.append(f"{compose.where(node)}: {text}")

    def run(self) -> Checked:
        doc = self.doc
        all_keys = doc.mapping(self.root, "the instance file", TOP_KEYS)
        keys = {k: v for k, v in all_keys.items() if not compose.is_null(v[1])}
        self._refuse_hosts(keys)
        params = self._params(keys["param"][1]) if "param" in keys else {}
        user = self._user(keys["user"][1], params) if "user" in keys else None
        doc.resolve = _resolver(self.name, params, user or default_user(), _plain(self.root))
        values = self._values(keys)
        values["param"] = tuple(params.items())
        if user is not None:
            values["user"] = user
        for key, (key_node, value_node) in keys.items():
            info = LIMA_KEYS.get(key)
            if info is None or info.decision == "honoured":
                self.honoured.append(f"{key}: {info.why if info else ENVDECK_KEYS[key]}")
            elif asks_for_something(_plain(value_node)):
                self.warn(key_node, f"{key}: ignored: {info.why}")
        values["mounts"] = parse_mounts(doc, keys, user or default_user(), self.warn)
        values["guest"] = guest_keys.parse(doc, keys, values, self.warn, self.base_dir)
        config = InstanceConfig(**values)
        image = config.images[0] if config.images else None
        return Checked(
            config, tuple(self.honoured), tuple(self.warnings), image, compose.to_text(self.root)
        )

    def _refuse_hosts(self, keys: dict[str, tuple[yaml.Node, yaml.Node]]) -> None:
        doc = self.doc
        if "os" in keys:
            guest_os = doc.string(keys["os"][1], "os")
            if guest_os.lower() != "linux":
                raise doc.fail(
                    keys["os"][1],
                    f"os: {guest_os} cannot run here: "
                    + OS_REFUSED.get(guest_os, "envdeck runs Linux guests"),
                    "use a Linux template (e.g. base: template:ubuntu-lts)",
                )
        if "vmType" in keys:
            vm_type = doc.string(keys["vmType"][1], "vmType")
            if vm_type in VM_TYPES_REFUSED:
                raise doc.fail(
                    keys["vmType"][1],
                    f"vmType: {vm_type} cannot run here: {VM_TYPES_REFUSED[vm_type]}",
                    "remove vmType: (envdeck runs QEMU) or write vmType: qemu",
                )
            doc.choice(keys["vmType"][1], "vmType", ("qemu",))
        if "minimumLimaVersion" in keys:
            node = keys["minimumLimaVersion"][1]
            wanted = version_tuple(str(doc.scalar(node, "minimumLimaVersion")))
            if wanted is None:
                raise doc.fail(node, "minimumLimaVersion is not a version", "write e.g. 2.0.0")
            if wanted > (version_tuple(LIMA_VERSION) or ()):
                self.warn(
                    keys["minimumLimaVersion"][0],
                    f"minimumLimaVersion: the file wants Lima {node.value}; envdeck follows"
                    f" Lima {LIMA_VERSION}, so newer keys may be refused",
                )

    def _params(self, node: yaml.Node) -> dict[str, str]:
        doc = self.doc
        entries = doc.mapping(node, "param", _AnyKey())
        params: dict[str, str] = {}
        for key, (key_node, value_node) in entries.items():
            if not _PARAM_NAME.fullmatch(key):
                raise doc.fail(
                    key_node, f"param name {key!r}", "start with a letter; letters, digits, _"
                )
            value = doc.scalar(value_node, f"param.{key}")
            params[key] = (
                ""
                if value is None
                else show(value).strip("'")
                if not isinstance(value, str)
                else value
            )
            if any(not c.isprintable() and c != "\t" for c in params[key]):
                raise doc.fail(value_node, f"param.{key} has control characters", "remove them")
        return params

    def _user(self, node: yaml.Node, params: dict[str, str]) -> GuestUser:
        doc = self.doc
        fields = dict.fromkeys(("name", "comment", "uid", "home", "shell", "passwordlessSudo"), "")
        keys = {
            k: v
            for k, (_, v) in doc.mapping(node, "user", fields).items()
            if not compose.is_null(v)
        }
        base = default_user()
        name = doc.string(keys["name"], "user.name") if "name" in keys else base.name
        if not _LINUX_NAME.fullmatch(name) or name == "root":
            raise doc.fail(keys["name"], f"user.name {name!r}", "use a plain Linux user name")
        uid = doc.integer(keys["uid"], "user.uid", 1, 65533) if "uid" in keys else base.uid
        shell = doc.string(keys["shell"], "user.shell") if "shell" in keys else base.shell
        home = f"/home/{name}.linux"
        if "home" in keys:
            doc.resolve = _resolver(self.name, params, GuestUser(name, uid, home), {})
            home = doc.template(keys["home"], "user.home")
        return GuestUser(name, uid, home, shell)

    def _values(self, keys: dict[str, tuple[yaml.Node, yaml.Node]]) -> dict[str, Any]:
        doc = self.doc
        values: dict[str, Any] = {}
        for key, (_, node) in keys.items():
            if key in _FIELD_PARSERS:
                name, value = _FIELD_PARSERS[key](doc, node)
                values[name] = value
        if values.get("arch") == "default":
            values["arch"] = host_arch() if host_arch() in ARCHES else "x86_64"
        _check_sizes(doc, keys, values)
        if (
            "images" not in keys
            and "kernel" not in keys
            and values.get("template", "tiny") == "tiny"
            and values.get("arch", "x86_64") not in TINY_ARCHES
        ):
            raise doc.fail(
                keys["arch"][1],
                f"the tiny template is built for {', '.join(TINY_ARCHES)}, not {values['arch']}",
                f"set arch: to one of {', '.join(TINY_ARCHES)}",
            )
        if "kernel" in keys and values.get("arch", "x86_64") != "x86_64":
            raise doc.fail(
                keys["arch"][1],
                f"a custom kernel boots x86_64 guests for now (QEMU's microvm),"
                f" not {values['arch']}",
                "remove arch: (or set arch: x86_64) and give an x86_64 kernel",
            )
        if "images" in keys:
            self._images(keys, values)
        if "kernel" in keys:
            values["kernel"] = _kernel(doc, keys["kernel"][1], self.base_dir or Path.cwd())
            values.setdefault("template", None)
            if values["template"] is not None:
                raise doc.fail(
                    keys["kernel"][0],
                    "kernel: and template: exclude each other",
                    "keep one: template for the built-in guest, kernel for your own",
                )
        if "cpuType" in keys:
            values["cpu_type"] = _cpu_type(doc, keys["cpuType"][1])
        if "ssh" in keys:
            self._ssh(keys["ssh"][1], values)
        if "portForwards" in keys:
            values["port_forwards"] = tuple(
                _forward(doc, n) for n in doc.sequence(keys["portForwards"][1], "portForwards")
            )
        if "provision" in keys:
            values["provision"] = tuple(
                _provision(doc, n) for n in doc.sequence(keys["provision"][1], "provision")
            )
        if "probes" in keys:
            values["probes"] = tuple(
                _probe(doc, n, i)
                for i, n in enumerate(doc.sequence(keys["probes"][1], "probes"), 1)
            )
        if "message" in keys:
            values["message"] = doc.template(keys["message"][1], "message").strip()
        if "env" in keys:
            env = doc.mapping(keys["env"][1], "env", _AnyKey())
            values["env"] = tuple(
                (k, show(doc.scalar(v, f"env.{k}")).strip("'")) for k, (_, v) in env.items()
            )
            for key, (key_node, _) in env.items():
                if not _PARAM_NAME.fullmatch(key):
                    raise doc.fail(key_node, f"env name {key!r}", "letters, digits and _")
        if values.get("template") == "docker":
            _docker_template(values)
        return values

    def _images(self, keys: dict[str, tuple[yaml.Node, yaml.Node]], values: dict[str, Any]) -> None:
        doc = self.doc
        entries = [_image(doc, n) for n in doc.sequence(keys["images"][1], "images")]
        if not entries:
            raise doc.fail(
                keys["images"][1], "images: is empty", "list at least one image, or remove images:"
            )
        if "template" in keys or "kernel" in keys:
            raise doc.fail(
                keys["images"][0],
                "images: excludes template: and kernel:",
                "keep one: images for a cloud image, template for the built-in guest",
            )
        arch = values.get("arch") or (host_arch() if host_arch() in ARCHES else "x86_64")
        chosen = [(image, kernel) for image, kernel in entries if image.arch == arch]
        if not chosen:
            raise doc.fail(
                keys["images"][1],
                f"no image for arch {arch}",
                f"add an image with 'arch: {arch}', or set arch: to one the images have",
            )
        image, kernel = chosen[0]
        if kernel is not None:
            raise doc.fail(
                kernel,
                f"the {arch} image boots its own kernel: and initrd:, which envdeck does not do"
                " (it boots cloud images from their disk with UEFI)",
                f"list an {arch} disk image without kernel:/initrd: before this one",
            )
        values["images"] = tuple(image for image, kernel in chosen if kernel is None)
        values["template"] = None

    def _ssh(self, node: yaml.Node, values: dict[str, Any]) -> None:
        doc = self.doc
        ssh = doc.mapping(node, "ssh", {"localPort": "", **SSH_HONOURED, **SSH_WARNED})
        for key, (key_node, value_node) in ssh.items():
            if compose.is_null(value_node):
                continue
            if key == "localPort":
                values["ssh_local_port"] = doc.integer(value_node, "ssh.localPort", 0, 65535)
            elif key in SSH_WARNED and doc.boolean(value_node, f"ssh.{key}"):
                self.warn(key_node, f"ssh.{key}: ignored: {SSH_WARNED[key]}")


def _docker_template(values: dict[str, Any]) -> None:
    """The docker template: an x86_64 or aarch64 guest (its image is built for either), larger
    defaults, and the guest's docker socket forwarded to docker.sock unless a rule forwards it
    already."""
    for name, value in DOCKER_DEFAULTS.items():
        values.setdefault(name, value)
    rules = values.get("port_forwards", ())
    if not any(rule.guest_socket == DOCKER_GUEST_SOCKET for rule in rules):
        implied = PortForwardRule(guest_socket=DOCKER_GUEST_SOCKET, host_socket=DOCKER_HOST_SOCKET)
        values["port_forwards"] = (*rules, implied)


class _AnyKey(dict[str, str]):
    """An ``allowed`` table for mappings whose keys are the user's names (param:, env:)."""

    def __contains__(self, key: object) -> bool:
        return True


def _check_sizes(
    doc: _Doc, keys: dict[str, tuple[yaml.Node, yaml.Node]], values: dict[str, Any]
) -> None:
    if (memory := values.get("memory_bytes")) and memory < (64 << 20):
        raise doc.fail(
            keys["memory"][1],
            f"memory {format_size(memory)} is too small",
            "give the guest at least 64MiB",
        )
    if memory and memory > (limit := host_memory()):
        raise doc.fail(
            keys["memory"][1],
            f"memory {format_size(memory)} is more than this host's RAM ({limit >> 20}MiB)",
            "give the guest at most the host's RAM, e.g. memory: 2GiB",
        )
    if (disk := values.get("disk_bytes")) and disk > MAX_DISK:
        raise doc.fail(
            keys["disk"][1],
            f"disk {format_size(disk)} is more than envdeck's limit of {format_size(MAX_DISK)}",
            "give the guest a smaller disk, e.g. disk: 20GiB",
        )


def _resolver(
    name: str, params: dict[str, str], user: GuestUser, data: Any
) -> Callable[[list[str]], Any]:
    """Lima's template variables for instance ``name``."""
    from envdeck.backend import store
    from envdeck.backend.arch import docker_arch

    folder = store.home() / "instances" / name
    fields: dict[str, Any] = {
        "Name": name,
        "Dir": str(folder),
        "Home": user.home,
        "User": user.name,
        "UID": user.uid,
        "Hostname": name,
        "HostOS": "linux",
        "HostArch": docker_arch(host_arch()),
        "GlobalTempDir": "/tmp",
        "TempDir": str(folder / "tmp"),
    }

    def resolve(path: list[str]) -> Any:
        head, rest = (path[0], path[1:]) if path else ("", [])
        if head == "Param" and len(rest) == 1:
            if rest[0] not in params:
                raise VariableError(f"{{{{.Param.{rest[0]}}}}} is not set under param:")
            return params[rest[0]]
        if head == "Instance" and rest[:1] == ["Config"]:
            return _lookup(data, rest[1:])
        if head in fields and not rest:
            return fields[head]
        raise VariableError(f"unknown template variable {{{{.{'.'.join(path)}}}}}")

    return resolve


def _lookup(data: Any, path: list[str]) -> Any:
    """``.Instance.Config.VMOpts.vz...`` in the document (Go field names; missing: nothing)."""
    for part in path:
        if not isinstance(data, dict):
            return None
        match = [k for k in data if isinstance(k, str) and k.lower() == part.lower()]
        data = data[match[0]] if match else None
    return data


def load_config(path: Path, *, name: str | None = None) -> InstanceConfig:
    """Read and validate an instance YAML file."""
    return check_file(path, name=name).config


def check_file(path: Path, *, name: str | None = None) -> Checked:
    """Read an instance YAML file and check it (bases, image choice); nothing is written."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(
            f"{path} does not exist", hint="give the path of an instance YAML file"
        ) from None
    except UnicodeDecodeError:
        raise ConfigError(
            f"{path} is not UTF-8 text", where=str(path), hint="save it as UTF-8"
        ) from None
    except OSError as exc:
        raise ConfigError(
            f"cannot read {path}: {exc.strerror}", hint="check the path and its permissions"
        ) from None
    return check_config(text, str(path), path.resolve().parent, name=name)


def render_config(
    *,
    template: str = "tiny",
    arch: str = "x86_64",
    cpus: int = 1,
    memory_bytes: int = 512 << 20,
    disk_bytes: int = 1 << 30,
    accel: str = "auto",
) -> str:
    """The instance.yaml that ``envdeck create`` writes for command-line options."""
    return (
        "# envdeck instance (Lima-compatible subset). Edit, then 'envdeck restart NAME'.\n"
        f"template: {template}\n"
        f"arch: {arch}\n"
        f"cpus: {cpus}\n"
        f"memory: {format_size(memory_bytes)}\n"
        f"disk: {format_size(disk_bytes)}\n"
        f"accel: {accel}\n"
        "# portForwards:\n"
        "#   - guestPort: 80\n"
        "#     hostPort: 8080\n"
    )
