"""The dashboard's part of ``config_dir()/config.yaml``: theme, keymap, highlight rules.

```yaml
theme: envdeck-light
keymap:                 # binding id -> key(s), e.g. "instance.stop: ctrl+x" (see `?` help)
  instance.stop: x
highlight:              # user rules beside the built-in emulated-process highlight
  - match: {command: "postgres|redis", user: "^root$"}   # all given fields must match (regex)
    style: "bold yellow"
```
Errors never stop the dashboard: they come back as notices for the user.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.style import Style

from envdeck.backend import store

MATCH_FIELDS = ("command", "exe", "user", "container")


@dataclass(frozen=True)
class HighlightRule:
    """Rows whose fields all match get ``style`` (a Rich style)."""

    patterns: dict[str, re.Pattern[str]]
    style: Style

    def matches(self, row: Mapping[str, Any], command: str) -> bool:
        """True when every pattern of the rule matches the row."""
        values = {
            "command": command,
            "exe": str(row.get("exe") or (row.get("cmdline") or [""])[0] or ""),
            "user": str(row.get("user") or ""),
            "container": str(row.get("container") or ""),
        }
        return all(p.search(values[name]) for name, p in self.patterns.items())


@dataclass
class UISettings:
    """What the dashboard reads from the config file."""

    theme: str | None = None
    keymap: dict[str, str] = field(default_factory=dict)
    highlight: list[HighlightRule] = field(default_factory=list)
    notices: list[str] = field(default_factory=list)


def config_path() -> Path:
    """``config_dir()/config.yaml``."""
    return store.config_dir() / "config.yaml"


def load_settings(path: Path | None = None) -> UISettings:
    """Read the dashboard settings; a missing file gives defaults."""
    path = path or config_path()
    settings = UISettings()
    try:
        text = path.read_text()
    except FileNotFoundError:
        return settings
    except OSError as exc:
        settings.notices.append(f"{path}: ignored ({exc})")
        return settings
    import yaml  # (here: most dashboards start with no config file, and yaml is ~10 ms)

    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        settings.notices.append(f"{path}: ignored ({exc})")
        return settings
    if not isinstance(data, dict):
        settings.notices.append(f"{path}: expected a mapping at top level")
        return settings
    if isinstance(data.get("theme"), str):
        settings.theme = data["theme"]
    keymap = data.get("keymap") or {}
    if isinstance(keymap, dict):
        settings.keymap = {str(k): str(v) for k, v in keymap.items()}
    else:
        settings.notices.append(f"{path}: 'keymap' must map binding ids to keys")
    for index, item in enumerate(data.get("highlight") or []):
        try:
            settings.highlight.append(_rule(item))
        except (TypeError, ValueError, re.error, AttributeError) as exc:
            settings.notices.append(f"{path}: highlight rule {index + 1} ignored ({exc})")
    return settings


def _rule(item: dict) -> HighlightRule:
    match = item.get("match") or {}
    unknown = set(match) - set(MATCH_FIELDS)
    if unknown or not match:
        raise ValueError(f"'match' needs some of {', '.join(MATCH_FIELDS)}")
    patterns = {k: re.compile(str(v)) for k, v in match.items()}
    return HighlightRule(patterns, Style.parse(str(item.get("style", "bold"))))
