"""The built-in themes: a dark default, a light one and a high-contrast one."""

from __future__ import annotations

from textual.theme import Theme

DEFAULT_THEME = "envdeck-dark"

# Custom variables every theme must resolve (the dashboard CSS references them).
VARIABLE_DEFAULTS: dict[str, dict[str, str]] = {
    "dark": {
        "emulated": "#ff79c6",
        "emulated-background": "#3b1f33",
        "badge-foreground": "#1e1e2e",
        "state-ready": "#50fa7b",
        "state-booting": "#f1fa8c",
        "state-stopped": "#8a8f98",
        "state-crashed": "#ff5555",
        "state-degraded": "#ffb86c",
        "match-background": "#44475a",
    },
    "light": {
        "emulated": "#a4136b",
        "emulated-background": "#fbe3f1",
        "badge-foreground": "#ffffff",
        "state-ready": "#1a7f37",
        "state-booting": "#9a6700",
        "state-stopped": "#6e7781",
        "state-crashed": "#cf222e",
        "state-degraded": "#bc4c00",
        "match-background": "#ddf4ff",
    },
}


def pane_border(variables: dict[str, str], dark: bool) -> str:
    """The unfocused pane border (``$pane-border``) unless the theme sets it: lighter than the
    panel on a dark theme, darker on a light one (a light panel lightened is the background)."""
    return (
        variables.get("pane-border") or variables["panel-lighten-2" if dark else "panel-darken-3"]
    )


def variable_defaults(dark: bool) -> dict[str, str]:
    """The custom variables for a theme that defines none of its own."""
    return dict(VARIABLE_DEFAULTS["dark" if dark else "light"])


BUILTIN_THEMES: dict[str, Theme] = {
    "envdeck-dark": Theme(
        name="envdeck-dark",
        primary="#7aa2f7",
        secondary="#bb9af7",
        accent="#ff9e64",
        warning="#e0af68",
        error="#f7768e",
        success="#9ece6a",
        foreground="#c0caf5",
        background="#1a1b26",
        surface="#1f2335",
        panel="#24283b",
        dark=True,
        variables=variable_defaults(True),
    ),
    "envdeck-light": Theme(
        name="envdeck-light",
        primary="#0969da",
        secondary="#8250df",
        accent="#bc4c00",
        warning="#9a6700",
        error="#cf222e",
        success="#1a7f37",
        foreground="#1f2328",
        background="#ffffff",
        surface="#f6f8fa",
        panel="#eaeef2",
        dark=False,
        variables=variable_defaults(False),
    ),
    "envdeck-high-contrast": Theme(
        name="envdeck-high-contrast",
        primary="#00ffff",
        secondary="#ffff00",
        accent="#ffff00",
        warning="#ffff00",
        error="#ff0000",
        success="#00ff00",
        foreground="#ffffff",
        background="#000000",
        surface="#000000",
        panel="#000000",
        dark=True,
        luminosity_spread=0.0,
        text_alpha=1.0,
        variables={
            "emulated": "#000000",
            "emulated-background": "#ff00ff",
            "badge-foreground": "#000000",
            "state-ready": "#00ff00",
            "state-booting": "#ffff00",
            "state-stopped": "#c0c0c0",
            "state-crashed": "#ff0000",
            "state-degraded": "#ff8000",
            "match-background": "#0000ff",
            "block-cursor-background": "#ffff00",
            "block-cursor-foreground": "#000000",
        },
    ),
}
