"""Template composition as Lima does it: ``base:`` files merged under the instance file.

Bases are read as YAML node trees whose marks carry their own file name, so an error in a
base still points at ``base-file:line:col``. The merge follows Lima's documented rules: the
including file wins for scalars and maps merge key by key; lists append the base's entries,
except ``base``, ``provision`` and ``probes``, where the base's come first; ``dns`` is taken
from the base only when the file has none; ``mountTypesUnsupported`` keeps each value once;
``minimumLimaVersion`` keeps the highest. Relative image locations are made absolute against
the file that names them, so the composed document stands alone.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import urllib.parse
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from envdeck.backend.config.errors import ConfigError
from envdeck.backend.config.lima_keys import version_tuple
from envdeck.backend.errors import UserInputError

#: where a Lima install keeps its templates, after $LIMA_TEMPLATES_PATH
TEMPLATE_DIRS = (
    "~/.config/lima/templates",
    "/usr/local/share/lima/templates",
    "/usr/share/lima/templates",
)
_PREPENDED = ("base", "provision", "probes")
_MAX_BASES = 64


class ComposeError(ConfigError):
    """A base that cannot be found, read or trusted: ``where`` names the base: entry."""


@dataclass(frozen=True)
class Origin:
    """Where a document came from: relative locators resolve against ``folder`` or ``url``."""

    label: str
    folder: Path | None = None
    url: str | None = None

    def identity(self) -> str:
        return self.url or (str(self.folder / Path(self.label).name) if self.folder else self.label)


def template_dirs() -> list[Path]:
    """$LIMA_TEMPLATES_PATH (colon-separated), then a Lima install's template folders."""
    listed = [p for p in os.environ.get("LIMA_TEMPLATES_PATH", "").split(":") if p]
    return [Path(p).expanduser() for p in (*listed, *TEMPLATE_DIRS)]


def where(node: yaml.Node) -> str:
    mark = node.start_mark
    return f"{mark.name}:{mark.line + 1}:{mark.column + 1}"


def is_null(node: yaml.Node | None) -> bool:
    return node is None or (isinstance(node, yaml.ScalarNode) and node.tag.endswith(":null"))


def has_bases(root: yaml.Node) -> bool:
    """Whether the document names base templates."""
    return isinstance(root, yaml.MappingNode) and any(
        _key(k) == "base" and not is_null(v) for k, v in root.value
    )


def compose(root: yaml.Node, origin: Origin, read: Any, stack: tuple[str, ...] = ()) -> yaml.Node:
    """``root`` with its bases merged in (recursively). ``read(text, label)`` parses a base."""
    stack = (*stack, origin.identity())
    if len(stack) > _MAX_BASES:
        raise ComposeError("bases are nested too deeply", where=where(root), hint="flatten them")
    absolutize(root, origin)
    if not isinstance(root, yaml.MappingNode):
        return root
    base_node = next((v for k, v in root.value if _key(k) == "base"), None)
    root.value = [(k, v) for k, v in root.value if _key(k) != "base"]
    if is_null(base_node):
        return root
    assert base_node is not None
    entries = base_node.value if isinstance(base_node, yaml.SequenceNode) else [base_node]
    for entry in entries:
        locator, digest = _locator(entry)
        text, base_origin = locate(locator, digest, origin, entry)
        if base_origin.identity() in stack:
            chain = " -> ".join((*stack, base_origin.identity()))
            raise ComposeError(
                f"base {locator!r} makes a cycle: {chain}",
                where=where(entry),
                hint="remove the base: entry that leads back to a file already included",
            )
        base_root = read(text, base_origin.label)
        if base_root is None:
            continue
        base_root = compose(base_root, base_origin, read, stack)
        root = merge(root, base_root, ())
    return root


def _key(node: yaml.Node) -> str | None:
    return node.value if isinstance(node, yaml.ScalarNode) else None


def _locator(entry: yaml.Node) -> tuple[str, str | None]:
    """A base entry: a string, or {url: ..., digest: ...}."""
    if isinstance(entry, yaml.ScalarNode) and entry.value and not is_null(entry):
        return entry.value, None
    if isinstance(entry, yaml.MappingNode):
        fields = {_key(k): v for k, v in entry.value}
        url = fields.get("url")
        digest = fields.get("digest")
        unknown = set(fields) - {"url", "digest"}
        digest_ok = digest is None or (isinstance(digest, yaml.ScalarNode) and digest.value)
        if not unknown and isinstance(url, yaml.ScalarNode) and url.value and digest_ok:
            return url.value, digest.value if isinstance(digest, yaml.ScalarNode) else None
    raise ComposeError(
        "a base: entry must be a locator or {url: ..., digest: ...}",
        where=where(entry),
        hint="write e.g. 'base: template:_images/ubuntu-lts' or '- url: ./base.yaml'",
    )


def locate(locator: str, digest: str | None, origin: Origin, node: yaml.Node) -> tuple[str, Origin]:
    """(text, origin) of the base ``locator`` names, read from disk or downloaded to memory."""
    if locator.startswith("template:"):
        name = locator.removeprefix("template:")
        name = name if name.endswith(".yaml") else f"{name}.yaml"
        looked = template_dirs()
        for folder in looked:
            if ".." not in Path(name).parts and (folder / name).is_file():
                return _read_file(folder / name, digest, node)
        raise ComposeError(
            f"base {locator!r} not found; looked in: " + ", ".join(str(p) for p in looked),
            where=where(node),
            hint="set LIMA_TEMPLATES_PATH to the folder holding Lima's templates, or give a path",
        )
    scheme = locator.split(":", 1)[0] if re.match(r"[a-z][a-z0-9+.-]+:[^/]", locator) else ""
    if scheme and scheme not in ("file", "http", "https"):
        locator = _url_plugin(scheme, locator, node)
    if locator.startswith(("http://", "https://")) or (
        origin.url and "://" not in locator and not locator.startswith("/")
    ):
        url = urllib.parse.urljoin(origin.url or "", locator)
        return _download(url, digest, node), Origin(url, None, url)
    path = Path(locator.removeprefix("file://")).expanduser()
    if not path.is_absolute():
        if origin.folder is None:
            raise ComposeError(
                f"base {locator!r} is relative, but this YAML has no folder",
                where=where(node),
                hint="give an absolute path, or use 'create -f FILE'",
            )
        path = origin.folder / path
    return _read_file(path, digest, node)


def _url_plugin(scheme: str, locator: str, node: yaml.Node) -> str:
    """A ``NAME:rest`` locator through Lima's ``limactl-url-NAME`` plugin, as Lima runs it."""
    plugin = shutil.which(f"limactl-url-{scheme}")
    if plugin is None:
        raise ComposeError(
            f"base {locator!r} needs Lima's URL plugin limactl-url-{scheme}, which is not on PATH",
            where=where(node),
            hint=f"install limactl-url-{scheme} (it ships with Lima), or give the URL it makes",
        )
    try:
        result = subprocess.run(
            [plugin, locator.split(":", 1)[1]], capture_output=True, text=True, timeout=60
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ComposeError(
            f"limactl-url-{scheme} failed: {exc}", where=where(node), hint="run it by hand"
        ) from None
    if result.returncode != 0 or not result.stdout.strip():
        raise ComposeError(
            f"limactl-url-{scheme} failed: {result.stderr.strip() or 'no URL'}",
            where=where(node),
            hint="run it by hand to see why",
        )
    return result.stdout.strip()


def _read_file(path: Path, digest: str | None, node: yaml.Node) -> tuple[str, Origin]:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ComposeError(
            f"base {path} does not exist",
            where=where(node),
            hint="check the path (relative paths are from the including file's folder)",
        ) from None
    except OSError as exc:
        raise ComposeError(
            f"cannot read base {path}: {exc.strerror}", where=where(node), hint="check the path"
        ) from None
    _check_digest(data, digest, str(path), node)
    return _text(data, str(path), node), Origin(str(path), path.resolve().parent)


def _download(url: str, digest: str | None, node: yaml.Node) -> str:
    from envdeck.backend.images import cloud  # the loopback-safe download code

    try:
        data = cloud.download_small(url)
    except UserInputError as exc:
        raise ComposeError(exc.message, where=where(node), hint=exc.hint) from None
    _check_digest(data, digest, url, node)
    return _text(data, url, node)


def _check_digest(data: bytes, digest: str | None, name: str, node: yaml.Node) -> None:
    from envdeck.backend.images.cloud import digest_of

    if digest is None:
        return
    algorithm = digest.split(":", 1)[0].lower()
    if algorithm not in ("sha256", "sha512"):
        raise ComposeError(
            f"base digest {digest!r} is not sha256:<hex> or sha512:<hex>",
            where=where(node),
            hint="compute it with sha256sum FILE",
        )
    got = digest_of(data, algorithm)
    if got != digest.lower():
        raise ComposeError(
            f"base {name} does not match its digest: expected {digest}, got {got}",
            where=where(node),
            hint="the file changed, or the digest is wrong: check the base: entry",
        )


def _text(data: bytes, name: str, node: yaml.Node) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise ComposeError(
            f"base {name} is not UTF-8 text", where=where(node), hint="point at a YAML file"
        ) from None


def absolutize(root: yaml.Node, origin: Origin) -> None:
    """Make relative ``images:`` locations (and their kernel/initrd) absolute, in place."""
    if not isinstance(root, yaml.MappingNode):
        return
    images = next((v for k, v in root.value if _key(k) == "images"), None)
    if not isinstance(images, yaml.SequenceNode):
        return
    for entry in images.value:
        if not isinstance(entry, yaml.MappingNode):
            continue
        for key, value in entry.value:
            if _key(key) == "location":
                _absolute(value, origin)
            elif _key(key) in ("kernel", "initrd") and isinstance(value, yaml.MappingNode):
                for sub_key, sub_value in value.value:
                    if _key(sub_key) == "location":
                        _absolute(sub_value, origin)


def _absolute(node: yaml.Node, origin: Origin) -> None:
    text = node.value if isinstance(node, yaml.ScalarNode) else None
    if not text or not isinstance(text, str) or "://" in text or text.startswith(("/", "~")):
        return
    if origin.url:
        node.value = urllib.parse.urljoin(origin.url, text)
    elif origin.folder is not None:
        node.value = str(origin.folder / text)


def merge(top: yaml.Node, base: yaml.Node, path: tuple[str, ...]) -> yaml.Node:
    """``top`` over ``base`` with Lima's rules (see the module docstring)."""
    if isinstance(top, yaml.MappingNode) and isinstance(base, yaml.MappingNode):
        base_items = {_key(k): v for k, v in base.value}
        merged = []
        for key_node, value in top.value:
            key = _key(key_node)
            if key in base_items and key is not None:
                value = _merge_field(key, value, base_items[key], (*path, key))
            merged.append((key_node, value))
        present = {_key(k) for k, _ in top.value}
        merged += [(k, v) for k, v in base.value if _key(k) not in present]
        return yaml.MappingNode(top.tag, merged, top.start_mark, top.end_mark, top.flow_style)
    return top


def _merge_field(key: str, top: yaml.Node, base: yaml.Node, path: tuple[str, ...]) -> yaml.Node:
    if path == ("minimumLimaVersion",):
        mine, theirs = (version_tuple(str(getattr(n, "value", ""))) for n in (top, base))
        return base if mine and theirs and theirs > mine else top
    if path == ("dns",) and isinstance(top, yaml.SequenceNode) and top.value:
        return top
    if isinstance(top, yaml.SequenceNode) and isinstance(base, yaml.SequenceNode):
        items = base.value + top.value if path[0] in _PREPENDED else top.value + base.value
        if path == ("mountTypesUnsupported",):
            items = list({_key(n) or id(n): n for n in items}.values())
        return yaml.SequenceNode(top.tag, items, top.start_mark, top.end_mark, top.flow_style)
    return merge(top, base, path)


def to_text(root: yaml.Node) -> str:
    """The composed document as YAML text (comments are not kept)."""
    return str(yaml.serialize(root, allow_unicode=True))
