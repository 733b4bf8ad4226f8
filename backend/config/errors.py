"""The error of an instance YAML that cannot run: where it is and how to fix it."""

from __future__ import annotations

from envdeck.backend.errors import UserInputError


class ConfigError(UserInputError):
    """Invalid instance YAML: ``where`` is ``file:line:col`` (in a base file, for its keys)."""
