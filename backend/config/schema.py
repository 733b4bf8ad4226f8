"""Instance YAML: a Lima-compatible subset, its defaults and its validation.

Every error is a :class:`ConfigError` that names the file, line and column (1-based) of the
offending node and says how to fix it. Parsing never writes anything and never rewrites the
user's file.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import psutil
import yaml

from envdeck.backend.errors import UserInputError

ARCHES = ("x86_64", "aarch64")
#: Every arch Lima names (cpuType keys, image entries); envdeck runs the ones in ARCHES.
ARCHES_ALL = ("x86_64", "aarch64", "armv7l", "ppc64le", "riscv64", "s390x")
ACCELS = ("auto", "kvm", "tcg", "hvf")
TEMPLATES = ("tiny",)
PROVISION_MODES = ("system",)  # "user" is refused until it is honoured (it would run as root)
#: deeper YAML nesting than this is refused (no instance file needs more than a handful)
MAX_DEPTH = 64
#: guestIP values whose meaning envdeck already honours: it reaches guest services through the
#: guest's 127.0.0.1, which serves listeners bound to 127.0.0.1 and to 0.0.0.0
GUEST_IPS = ("127.0.0.1", "0.0.0.0")
#: the largest disk envdeck creates (a qcow2 overlay grows on demand; this is its virtual size)
MAX_DISK = 64 << 40

_SIZE_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([KMGT]i?B?|B)?\s*$", re.IGNORECASE)
_UNITS = {"": 1, "B": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}


class ConfigError(UserInputError):
    """Invalid instance YAML: ``where`` is ``file:line:col``."""


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
    """A script run once at first boot."""

    mode: str
    script: str


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
    digest: str | None = None  # "sha256:<hex>"


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

    def where(self, node: yaml.Node) -> str:
        mark = node.start_mark
        return f"{self.source}:{mark.line + 1}:{mark.column + 1}"

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


TOP_KEYS = {
    "template": "built-in image",
    "arch": "guest architecture",
    "cpus": "virtual CPUs",
    "memory": "guest memory",
    "disk": "disk size",
    "accel": "accelerator",
    "kernel": "custom kernel",
    "images": "cloud images",
    "ssh": "ssh settings",
    "portForwards": "port forwards",
    "provision": "provisioning scripts",
    "cpuType": "QEMU CPU model per arch",
}

#: The architectures the built-in tiny template is built for.
TINY_ARCHES: tuple[str, ...] = ("x86_64",)
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
    guest_socket = doc.string(get["guestSocket"], "guestSocket") if "guestSocket" in get else None
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
    proto = doc.choice(get["proto"], "proto", ("tcp",)) if "proto" in get else "tcp"
    ignore = doc.boolean(get["ignore"], "ignore") if "ignore" in get else False
    return PortForwardRule(
        guest_range, host_range or guest_range, host_ip, proto, ignore, guest_socket, host_socket
    )


def _host_socket(doc: _Doc, node: yaml.Node) -> str:
    """A hostSocket path; a relative one must stay inside the instance's directory."""
    text = doc.string(node, "hostSocket")
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


def _provision(doc: _Doc, node: yaml.Node) -> ProvisionStep:
    keys = doc.mapping(node, "a provision entry", {"mode": "", "script": ""})
    if "script" not in keys:
        raise doc.fail(node, "a provision entry needs a script", "add 'script: |' and the commands")
    mode = "system"
    if "mode" in keys:
        mode_node = keys["mode"][1]
        if doc.scalar(mode_node, "mode") == "user":
            raise doc.fail(
                mode_node,
                "provision mode 'user' is not supported yet (the script would run as root)",
                "remove 'mode: user' to run the script as root (mode: system), on purpose",
            )
        mode = doc.choice(mode_node, "mode", PROVISION_MODES)
    return ProvisionStep(mode, doc.string(keys["script"][1], "script"))


_DIGEST_RE = re.compile(r"^sha256:[0-9a-f]{64}$")
_LOCATION_SCHEMES = ("http://", "https://", "file://", "/", "~")


def _image(doc: _Doc, node: yaml.Node) -> ImageSpec:
    keys = doc.mapping(node, "an images entry", {"location": "", "arch": "", "digest": ""})
    if "location" not in keys:
        raise doc.fail(
            node,
            "an image needs a location",
            "add 'location: https://.../image.qcow2' (or a local path)",
        )
    location = doc.string(keys["location"][1], "location")
    if not location.startswith(_LOCATION_SCHEMES):
        raise doc.fail(
            keys["location"][1],
            f"location {location!r} is not a URL or an absolute path",
            "use http://, https://, file:// or an absolute path",
        )
    arch = doc.choice(keys["arch"][1], "arch", ARCHES) if "arch" in keys else "x86_64"
    digest = None
    if "digest" in keys:
        digest = doc.string(keys["digest"][1], "digest").strip().lower()
        if not _DIGEST_RE.match(digest):
            raise doc.fail(
                keys["digest"][1],
                "digest is not 'sha256:' and 64 hex digits",
                "copy it from the image's SHA256SUMS, e.g. sha256:3b0c...",
            )
    return ImageSpec(location, arch, digest)


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
    "arch": lambda d, n: ("arch", d.choice(n, "arch", ARCHES)),
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


def parse_config(
    text: str, source: str = "<string>", base_dir: Path | None = None
) -> InstanceConfig:
    """Validate instance YAML ``text``; raise ConfigError (``source:line:col``) on any problem."""
    doc = _Doc(source)
    try:
        root = yaml.compose(text, Loader=_Loader)
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
    if root is None:
        return InstanceConfig()
    keys = doc.mapping(root, "the instance file", TOP_KEYS)
    values: dict[str, Any] = {}
    for key, (_, node) in keys.items():
        if key in _FIELD_PARSERS:
            name, value = _FIELD_PARSERS[key](doc, node)
            values[name] = value
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
            f"a custom kernel boots x86_64 guests for now (QEMU's microvm), not {values['arch']}",
            "remove arch: (or set arch: x86_64) and give an x86_64 kernel",
        )
    if "images" in keys:
        images = tuple(_image(doc, n) for n in doc.sequence(keys["images"][1], "images"))
        if not images:
            raise doc.fail(
                keys["images"][1], "images: is empty", "list at least one image, or remove images:"
            )
        if "template" in keys or "kernel" in keys:
            raise doc.fail(
                keys["images"][0],
                "images: excludes template: and kernel:",
                "keep one: images for a cloud image, template for the built-in guest",
            )
        arch = values.get("arch", "x86_64")
        if arch != "x86_64":
            raise doc.fail(
                keys["arch"][1],
                f"cloud images run x86_64 guests for now, not {arch}",
                "remove arch: (or set arch: x86_64) and list an x86_64 image",
            )
        if not any(image.arch == arch for image in images):
            raise doc.fail(
                keys["images"][1],
                f"no image for arch {arch}",
                f"add an image with 'arch: {arch}', or set arch: to one the images have",
            )
        values["images"] = images
        values["template"] = None
    if "kernel" in keys:
        values["kernel"] = _kernel(doc, keys["kernel"][1], base_dir or Path.cwd())
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
        ssh = doc.mapping(keys["ssh"][1], "ssh", {"localPort": ""})
        if "localPort" in ssh:
            values["ssh_local_port"] = doc.integer(ssh["localPort"][1], "ssh.localPort", 0, 65535)
    if "portForwards" in keys:
        values["port_forwards"] = tuple(
            _forward(doc, n) for n in doc.sequence(keys["portForwards"][1], "portForwards")
        )
    if "provision" in keys:
        values["provision"] = tuple(
            _provision(doc, n) for n in doc.sequence(keys["provision"][1], "provision")
        )
    return InstanceConfig(**values)


def load_config(path: Path) -> InstanceConfig:
    """Read and validate an instance YAML file."""
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
    return parse_config(text, str(path), path.parent)


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
