"""``mode: yq`` provisioning: the assignments Lima's templates write, applied on the host.

The guest may not have yq, so envdeck reads the guest file over SSH, applies the expression
here and writes the file back. Supported: a pipeline of assignments ``.a.b = VALUE`` (VALUE a
JSON scalar, ``"text"``, or a bare word) on JSON, YAML or INI files; anything else is refused
when the instance file is checked, never skipped.
"""

from __future__ import annotations

import configparser
import io
import json
import re
from typing import Any

import yaml

FORMATS = ("auto", "json", "yaml", "ini")
HINT = "write assignments such as '.features.cdi = true | .a.b = \"text\"' (json, yaml or ini)"
_ASSIGNMENT = re.compile(r'\s*((?:\.(?:[A-Za-z0-9_-]+|"[^"]*"))+)\s*=\s*(.*?)\s*$', re.DOTALL)
_SEGMENT = re.compile(r'\.(?:([A-Za-z0-9_-]+)|"([^"]*)")')


class YqError(ValueError):
    """An expression or file envdeck cannot apply."""


Assignment = tuple[list[str], Any]


def parse(expression: str) -> list[Assignment]:
    """``.a.b = 1 | .c = "x"`` -> [(["a", "b"], 1), (["c"], "x")]."""
    assignments: list[Assignment] = []
    for part in _split(expression):
        match = _ASSIGNMENT.fullmatch(part)
        if not match:
            raise YqError(f"{part.strip()!r} is not an assignment '.path = value'")
        path = [a or b for a, b in _SEGMENT.findall(match.group(1))]
        assignments.append((path, _value(match.group(2))))
    if not assignments:
        raise YqError("the expression is empty")
    return assignments


def _split(expression: str) -> list[str]:
    """Split on '|' outside double quotes."""
    parts: list[str] = []
    current: list[str] = []
    quoted = False
    for char in expression:
        if char == '"':
            quoted = not quoted
        if char == "|" and not quoted:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    parts.append("".join(current))
    return [p for p in parts if p.strip()]


def _value(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        if re.fullmatch(r"[A-Za-z0-9_./:@-]+", text):
            return text
        raise YqError(f'{text!r} is not a value (quote text as "...")') from None


def format_of(path: str, declared: str) -> str:
    """The file format: the declared one, or from the file name for ``auto``."""
    if declared != "auto":
        return declared
    suffix = path.rsplit(".", 1)[-1].lower() if "." in path.rsplit("/", 1)[-1] else ""
    if suffix == "json":
        return "json"
    if suffix in ("yaml", "yml"):
        return "yaml"
    if suffix in ("ini", "conf", "cfg"):
        return "ini"
    raise YqError(f"cannot tell the format of {path} (json, yaml or ini): set format:")


def apply(text: str, file_format: str, assignments: list[Assignment]) -> str:
    """``text`` (a file's content, '' if it does not exist) with the assignments made."""
    if file_format == "ini":
        return _apply_ini(text, assignments)
    try:
        data = (json.loads(text) if file_format == "json" else yaml.safe_load(text)) or {}
    except (json.JSONDecodeError, yaml.YAMLError) as exc:
        raise YqError(f"the file is not {file_format}: {exc}") from None
    for path, value in assignments:
        target = data
        for key in path[:-1]:
            if not isinstance(target.get(key), dict):
                target[key] = {}
            target = target[key]
        if not isinstance(target, dict):
            raise YqError(f"{'.'.join(path)} goes through a value that is not a map")
        target[path[-1]] = value
    if file_format == "json":
        return json.dumps(data, indent=2) + "\n"
    return str(yaml.safe_dump(data, sort_keys=False))


def _apply_ini(text: str, assignments: list[Assignment]) -> str:
    parser = configparser.ConfigParser(interpolation=None, strict=False)
    parser.optionxform = str  # type: ignore[assignment,method-assign]  # keep the key's case
    try:
        parser.read_string(text)
    except configparser.Error as exc:
        raise YqError(f"the file is not ini: {exc}") from None
    for path, value in assignments:
        if len(path) != 2:
            raise YqError(f"an ini assignment is .Section.Key, not .{'.'.join(path)}")
        section, key = path
        if not parser.has_section(section):
            parser.add_section(section)
        shown = "true" if value is True else "false" if value is False else str(value)
        parser.set(section, key, shown)
    out = io.StringIO()
    parser.write(out, space_around_delimiters=False)
    return out.getvalue()
