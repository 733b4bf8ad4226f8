"""User themes: one TOML file per theme in ``config_dir()/themes``.

A file holds the ``textual.theme.Theme`` fields at top level (``name``, ``primary``, ``dark``,
...) and an optional ``[variables]`` table (``emulated``, ``state-ready``, ...)::

    name = "solarized"
    primary = "#268bd2"
    dark = true
    [variables]
    emulated = "#d33682"
"""

from __future__ import annotations

import dataclasses
import tomllib
from pathlib import Path

from textual.theme import Theme

from .builtin import variable_defaults

_FIELDS = {f.name for f in dataclasses.fields(Theme)}


def theme_from_mapping(data: dict, *, origin: str) -> Theme:
    """Build a Theme from a parsed TOML mapping; raises ValueError naming ``origin``."""
    unknown = set(data) - _FIELDS
    if unknown:
        raise ValueError(f"{origin}: unknown theme keys {sorted(unknown)}")
    if "name" not in data or "primary" not in data:
        raise ValueError(f"{origin}: a theme needs at least 'name' and 'primary'")
    dark = bool(data.get("dark", True))
    variables = {**variable_defaults(dark), **dict(data.get("variables", {}))}
    return Theme(**{**data, "variables": variables})


def load_user_themes(directory: Path) -> tuple[list[Theme], list[str]]:
    """Every ``*.toml`` theme in ``directory``; returns (themes, error messages)."""
    themes: list[Theme] = []
    errors: list[str] = []
    if not directory.is_dir():
        return themes, errors
    for path in sorted(directory.glob("*.toml")):
        try:
            themes.append(theme_from_mapping(tomllib.loads(path.read_text()), origin=str(path)))
        except (OSError, ValueError, TypeError) as exc:  # tomllib errors are ValueErrors
            errors.append(f"theme {path.name}: {exc}")
    return themes, errors


def bundled_themes() -> list[Theme]:
    """The TOML themes shipped in this package (they double as examples of the format)."""
    themes, errors = load_user_themes(Path(__file__).parent)
    if errors:  # a broken file we ship is a bug: fail loudly in tests, not silently
        raise ValueError("; ".join(errors))
    return themes
