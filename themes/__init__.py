"""envdeck's themes: Textual ``Theme`` objects plus the variables the dashboard's CSS uses.

The dashboard styles state colours and the emulated-process highlight through theme variables
(``$state-ready``, ``$emulated``, ...). :data:`VARIABLE_DEFAULTS` supplies them for themes that do
not define them (Textual's built-ins, user themes), so every registered theme works.
User themes are TOML files in ``config_dir()/themes`` (see :mod:`envdeck.themes.loader`).
"""

from __future__ import annotations

from .builtin import (
    BUILTIN_THEMES,
    DEFAULT_THEME,
    VARIABLE_DEFAULTS,
    pane_border,
    variable_defaults,
)
from .loader import bundled_themes, load_user_themes

__all__ = [
    "BUILTIN_THEMES",
    "DEFAULT_THEME",
    "VARIABLE_DEFAULTS",
    "bundled_themes",
    "load_user_themes",
    "pane_border",
    "variable_defaults",
]
