"""The one error type users see: what went wrong, where, and how to fix it."""

from __future__ import annotations


class EnvdeckError(Exception):
    """A user-facing failure. ``exit_code`` is what the CLI exits with (2 = bad input)."""

    exit_code = 1

    def __init__(self, message: str, *, hint: str | None = None, where: str | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.where = where

    def __str__(self) -> str:
        text = f"{self.where}: {self.message}" if self.where else self.message
        if self.hint:
            text += f"\n  hint: {self.hint}"
        return text


class UserInputError(EnvdeckError):
    """Bad input from the user (arguments, YAML, names): exit code 2."""

    exit_code = 2


class NotFound(UserInputError):
    """A named thing (instance, container, process) does not exist."""


class MissingTool(EnvdeckError):
    """A host program envdeck needs is not installed."""
