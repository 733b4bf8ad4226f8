"""Lima keys that shape the guest beyond its image: ``ssh.forwardAgent``,
``ssh.loadDotSSHPubKeys``, ``timezone``, ``caCerts``, ``upgradePackages``, ``plain`` and
``copyToHost``.

Parsed here into :class:`GuestKeys` (every error at its file:line:col with a fix); honoured by
the cloud seed (cloud-init's ``timezone``, ``ca_certs``, ``package_upgrade``, authorized keys),
by the tiny guest's settings applied over SSH after boot, by ``envdeck shell`` (``-A``) and by
the agent (copyToHost after ready). ``plain: true`` is Lima's plain mode: no mounts, no
automatic or non-static port forwards, no agent forwarding, no timezone; provisioning still
runs (as in Lima).
"""

from __future__ import annotations

import getpass
import os
import zoneinfo
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from envdeck.backend.config import compose
from envdeck.backend.config.variables import VariableError, expand

if TYPE_CHECKING:
    from envdeck.backend.config.schema import _Doc

Nodes = dict[str, tuple[yaml.Node, yaml.Node]]
Warn = Callable[[yaml.Node, str], None]

PEM_BEGIN = "-----BEGIN CERTIFICATE-----"
PEM_END = "-----END CERTIFICATE-----"
#: the largest certificate file read from the host (a bundle of a few hundred CAs fits)
MAX_CERT_FILE = 1 << 20


@dataclass(frozen=True)
class CopyRule:
    """One ``copyToHost`` entry: a guest file copied to the host after the guest is ready."""

    guest: str
    host: str
    skip_if_missing: bool = False
    delete_on_stop: bool = False


@dataclass(frozen=True)
class CaCerts:
    """Lima's ``caCerts``: PEM certificates the guest trusts (files read at parse time)."""

    remove_defaults: bool = False
    certs: tuple[str, ...] = ()

    @property
    def wanted(self) -> bool:
        return self.remove_defaults or bool(self.certs)


@dataclass(frozen=True)
class GuestKeys:
    """What those keys ask of the guest, with Lima's defaults."""

    forward_agent: bool = False
    load_dot_ssh_pub_keys: bool = False
    timezone: str | None = None  # None or "": the image's own
    ca_certs: CaCerts = field(default_factory=CaCerts)
    upgrade_packages: bool = False
    plain: bool = False
    copy_to_host: tuple[CopyRule, ...] = ()
    legacy_bios: bool = False  # firmware.legacyBIOS: an x86_64 disk image boots with SeaBIOS


def parse(
    doc: _Doc,
    keys: Nodes,
    values: dict[str, Any],
    warn: Warn,
    base_dir: Path | None,
) -> GuestKeys:
    """The keys of the composed document ``keys``; ``values`` (the instance's parsed fields)
    loses its mounts and non-static port forwards in plain mode."""
    plain = doc.boolean(keys["plain"][1], "plain") if "plain" in keys else False
    ssh = _ssh_flags(doc, keys)
    tiny = values.get("template", "tiny") == "tiny"
    guest = GuestKeys(
        forward_agent=ssh.get("forwardAgent", False),
        load_dot_ssh_pub_keys=ssh.get("loadDotSSHPubKeys", False),
        timezone=_timezone(doc, keys["timezone"][1]) if "timezone" in keys else None,
        ca_certs=_ca_certs(doc, keys["caCerts"][1], base_dir) if "caCerts" in keys else CaCerts(),
        upgrade_packages=(
            doc.boolean(keys["upgradePackages"][1], "upgradePackages")
            if "upgradePackages" in keys
            else False
        ),
        plain=plain,
        copy_to_host=(
            tuple(
                _copy_rule(doc, node) for node in doc.sequence(keys["copyToHost"][1], "copyToHost")
            )
            if "copyToHost" in keys
            else ()
        ),
    )
    if "firmware" in keys:
        guest = replace(guest, legacy_bios=_legacy_bios(doc, keys["firmware"], values, warn))
    if guest.upgrade_packages and tiny:
        raise doc.fail(
            keys["upgradePackages"][1],
            "upgradePackages: true cannot be honoured: the tiny guest has no package manager"
            " (busybox and dropbear, rebuilt by envdeck)",
            "remove upgradePackages:, or use a cloud image (images:) or template: docker",
        )
    if plain:
        guest = _plain_mode(guest, keys, values, warn)
    return guest


def _legacy_bios(
    doc: _Doc, nodes: tuple[yaml.Node, yaml.Node], values: dict[str, Any], warn: Warn
) -> bool:
    """``firmware.legacyBIOS``: honoured for x86_64 disk images (QEMU's SeaBIOS instead of
    OVMF); Lima ignores it on aarch64, and the tiny guest boots its kernel with no firmware."""
    key_node, node = nodes
    if compose.is_null(node):
        return False
    if not isinstance(node, yaml.MappingNode):
        raise doc.fail(node, "firmware must be a mapping", "e.g. firmware: {legacyBIOS: true}")
    legacy = False
    for sub_key, value in node.value:
        name = getattr(sub_key, "value", None)
        if name == "legacyBIOS":
            legacy = not compose.is_null(value) and doc.boolean(value, "firmware.legacyBIOS")
        else:
            warn(sub_key, f"firmware.{name}: ignored: envdeck uses the firmware Debian packages")
    if not legacy:
        return False
    if values.get("arch", "x86_64") != "x86_64":
        warn(key_node, "firmware.legacyBIOS: ignored on aarch64 (UEFI only there, as in Lima)")
        return False
    if not values.get("images") and values.get("template") != "docker":
        warn(key_node, "firmware.legacyBIOS: ignored: this guest's kernel is booted directly")
        return False
    return True


def _ssh_flags(doc: _Doc, keys: Nodes) -> dict[str, bool]:
    if "ssh" not in keys or not isinstance(keys["ssh"][1], yaml.MappingNode):
        return {}
    flags = {}
    for key_node, value_node in keys["ssh"][1].value:
        name = getattr(key_node, "value", None)
        if name in ("forwardAgent", "loadDotSSHPubKeys") and not compose.is_null(value_node):
            flags[name] = doc.boolean(value_node, f"ssh.{name}")
    return flags


def _plain_mode(guest: GuestKeys, keys: Nodes, values: dict[str, Any], warn: Warn) -> GuestKeys:
    """Lima's plain mode: mounts, non-static port forwards, agent forwarding and the timezone
    are dropped (one warning line each when the file asked for them)."""
    if "mounts" in keys and values.get("mounts"):
        warn(keys["mounts"][0], "mounts: ignored in plain mode (as in Lima)")
    values["mounts"] = ()
    if "portForwards" in keys:
        nodes = list(keys["portForwards"][1].value)
        rules = values.get("port_forwards", ())
        kept = tuple(rule for rule, node in zip(rules, nodes, strict=False) if _static(node))
        if len(kept) < len(nodes):
            warn(
                keys["portForwards"][0],
                "portForwards: only the entries with 'static: true' are kept in plain mode"
                " (as in Lima)",
            )
        values["port_forwards"] = kept
    if guest.forward_agent:
        warn(keys["ssh"][0], "ssh.forwardAgent: ignored in plain mode (as in Lima)")
    if guest.timezone:
        warn(keys["timezone"][0], "timezone: ignored in plain mode (as in Lima)")
    return GuestKeys(
        load_dot_ssh_pub_keys=guest.load_dot_ssh_pub_keys,
        ca_certs=guest.ca_certs,
        upgrade_packages=guest.upgrade_packages,
        plain=True,
        copy_to_host=guest.copy_to_host,
    )


def _static(node: yaml.Node) -> bool:
    """Whether a portForwards entry says ``static: true``."""
    if not isinstance(node, yaml.MappingNode):
        return False
    return any(
        getattr(k, "value", None) == "static" and str(getattr(v, "value", "")).lower() == "true"
        for k, v in node.value
    )


def _timezone(doc: _Doc, node: yaml.Node) -> str | None:
    """A zoneinfo name; "" (Lima: set none) gives None."""
    value = doc.scalar(node, "timezone")
    if value == "":
        return None
    name = doc.string(node, "timezone")
    if tzif_file(name) is None:
        raise doc.fail(
            node,
            f"timezone {name!r} is not a zone of the zoneinfo database",
            "write a name such as Europe/Berlin, America/New_York or UTC"
            " (as in /usr/share/zoneinfo)",
        )
    return name


def tzif_file(name: str) -> Path | None:
    """The host's TZif file of zone ``name`` (None when the host has no such zone)."""
    if name.startswith("/") or ".." in name.split("/") or not name:
        return None
    for folder in zoneinfo.TZPATH:
        path = Path(folder) / name
        try:
            if path.is_file() and path.read_bytes()[:4] == b"TZif":
                return path
        except OSError:
            continue
    return None


def _ca_certs(doc: _Doc, node: yaml.Node, base_dir: Path | None) -> CaCerts:
    fields = doc.mapping(node, "caCerts", dict.fromkeys(("removeDefaults", "files", "certs"), ""))
    get = {k: v for k, (_, v) in fields.items() if not compose.is_null(v)}
    remove = (
        doc.boolean(get["removeDefaults"], "caCerts.removeDefaults")
        if "removeDefaults" in get
        else False
    )
    certs: list[str] = []
    for item in doc.sequence(get["files"], "caCerts.files") if "files" in get else ():
        certs.append(_cert_file(doc, item, base_dir))
    for item in doc.sequence(get["certs"], "caCerts.certs") if "certs" in get else ():
        certs.append(_pem(doc, item, doc.string(item, "caCerts.certs entry"), "the entry"))
    return CaCerts(remove, tuple(certs))


def _cert_file(doc: _Doc, node: yaml.Node, base_dir: Path | None) -> str:
    text = doc.string(node, "caCerts.files entry")
    path = Path(text).expanduser()
    if not path.is_absolute():
        path = (base_dir or Path.cwd()) / path
    try:
        if path.stat().st_size > MAX_CERT_FILE:
            raise doc.fail(node, f"caCerts file {path} is larger than 1MiB", "give a PEM file")
        content = path.read_text(encoding="ascii")
    except FileNotFoundError:
        raise doc.fail(
            node,
            f"caCerts file {path} does not exist",
            "give the path of a PEM certificate (relative paths are from the YAML's folder)",
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise doc.fail(node, f"cannot read caCerts file {path}: {exc}", "give a PEM file") from None
    return _pem(doc, node, content, str(path))


def _pem(doc: _Doc, node: yaml.Node, text: str, what: str) -> str:
    """The PEM certificate blocks of ``text`` (anything around them is dropped)."""
    blocks = []
    rest = text
    while (start := rest.find(PEM_BEGIN)) >= 0 and (end := rest.find(PEM_END, start)) >= 0:
        blocks.append(rest[start : end + len(PEM_END)].strip())
        rest = rest[end + len(PEM_END) :]
    if not blocks:
        raise doc.fail(
            node,
            f"caCerts: {what} holds no PEM certificate",
            f"give a certificate between '{PEM_BEGIN}' and '{PEM_END}'",
        )
    return "\n".join(blocks) + "\n"


def _copy_rule(doc: _Doc, node: yaml.Node) -> CopyRule:
    keys = doc.mapping(
        node,
        "a copyToHost entry",
        dict.fromkeys(("guest", "host", "skipIfMissing", "deleteOnStop"), ""),
    )
    get = {k: v for k, (_, v) in keys.items() if not compose.is_null(v)}
    for needed in ("guest", "host"):
        if needed not in get:
            raise doc.fail(
                node,
                f"a copyToHost entry needs {needed}:",
                "write e.g. guest: /etc/rancher/k3s/k3s.yaml and"
                " host: '{{.Dir}}/copied-from-guest/kubeconfig.yaml'",
            )
    guest = doc.template(get["guest"], "copyToHost guest")
    if not guest.startswith("/"):
        raise doc.fail(get["guest"], f"copyToHost guest {guest!r} is not absolute", "a full path")
    host = _host_template(doc, get["host"])
    if not host.startswith("/"):
        raise doc.fail(
            get["host"],
            f"copyToHost host {host!r} is not an absolute path",
            "start it with {{.Dir}}/ (the instance's folder) or {{.Home}}/ (your home)",
        )
    flags = {
        key: doc.boolean(get[key], f"copyToHost {key}") if key in get else False
        for key in ("skipIfMissing", "deleteOnStop")
    }
    return CopyRule(guest, host, flags["skipIfMissing"], flags["deleteOnStop"])


def _host_template(doc: _Doc, node: yaml.Node) -> str:
    """A host path: Lima expands {{.Home}}, {{.User}} and {{.UID}} as the host's there."""
    guest_resolve = doc.resolve
    host = {"Home": str(Path.home()), "User": _host_user(), "UID": os.getuid()}

    def resolve(path: list[str]) -> Any:
        if len(path) == 1 and path[0] in host:
            return host[path[0]]
        if guest_resolve is None:
            raise VariableError(f"unknown template variable {{{{.{'.'.join(path)}}}}}")
        return guest_resolve(path)

    text = doc.string(node, "copyToHost host")
    try:
        return expand(text, resolve)
    except VariableError as exc:
        raise doc.fail(
            node,
            f"copyToHost host: {exc}",
            "known variables: {{.Dir}}, {{.Home}}, {{.Name}}, {{.User}}, {{.UID}}, {{.Param.KEY}}",
        ) from None


def _host_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return str(os.getuid())
