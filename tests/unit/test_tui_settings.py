"""Config file: keymap and highlight rules; user themes from TOML."""

from __future__ import annotations

from pathlib import Path

from rich.style import Style

from envdeck.themes import BUILTIN_THEMES, VARIABLE_DEFAULTS, load_user_themes
from envdeck.tui.settings import load_settings


def test_missing_config_gives_defaults(tmp_path: Path):
    settings = load_settings(tmp_path / "nope.yaml")
    assert settings.keymap == {} and settings.highlight == [] and settings.notices == []


def test_keymap_theme_and_highlight_rules(tmp_path: Path):
    path = tmp_path / "config.yaml"
    path.write_text(
        "theme: envdeck-light\n"
        "keymap:\n  instance.stop: x\n"
        "highlight:\n"
        "  - match: {command: postgres, user: '^dev$'}\n    style: bold yellow\n"
        "  - match: {colour: red}\n"
    )
    settings = load_settings(path)
    assert settings.theme == "envdeck-light"
    assert settings.keymap == {"instance.stop": "x"}
    assert len(settings.highlight) == 1 and settings.highlight[0].style == Style.parse(
        "bold yellow"
    )
    rule = settings.highlight[0]
    assert rule.matches({"user": "dev"}, "postgres -D /data")
    assert not rule.matches({"user": "root"}, "postgres -D /data")
    assert len(settings.notices) == 1 and "rule 2" in settings.notices[0]


def test_broken_yaml_is_a_notice_not_a_crash(tmp_path: Path):
    path = tmp_path / "config.yaml"
    path.write_text("keymap: [unclosed\n")
    settings = load_settings(path)
    assert settings.keymap == {} and "ignored" in settings.notices[0]


def test_builtin_themes_define_every_custom_variable():
    for theme in BUILTIN_THEMES.values():
        assert set(VARIABLE_DEFAULTS["dark"]) <= set(theme.variables), theme.name
    assert {"envdeck-dark", "envdeck-light", "envdeck-high-contrast"} <= set(BUILTIN_THEMES)


def test_user_themes_load_with_defaults_and_errors_are_reported(tmp_path: Path):
    (tmp_path / "mine.toml").write_text(
        'name = "mine"\nprimary = "#268bd2"\ndark = false\n[variables]\nemulated = "#d33682"\n'
    )
    (tmp_path / "bad.toml").write_text('name = "bad"\nprimary = "#000"\nwat = 1\n')
    (tmp_path / "broken.toml").write_text("name = \n")
    themes, errors = load_user_themes(tmp_path)
    assert [t.name for t in themes] == ["mine"]
    assert themes[0].variables["emulated"] == "#d33682"
    assert themes[0].variables["state-ready"] == VARIABLE_DEFAULTS["light"]["state-ready"]
    assert len(errors) == 2 and any("wat" in e for e in errors)


def test_the_bundled_toml_theme_is_valid_user_theme_format():
    from envdeck.themes import bundled_themes

    assert [t.name for t in bundled_themes()] == ["envdeck-solarized-dark"]
