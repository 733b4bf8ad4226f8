"""Untrusted text made visible: nothing reaches the terminal as a control sequence."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from envdeck.backend.text import visible, visible_lines

OSC52 = "\x1b]52;c;ZWNobyBoaQ==\x07"  # clipboard write


def test_escape_sequences_are_shown_not_sent():
    assert visible(f"nginx {OSC52}") == "nginx \\e]52;c;ZWNobyBoaQ==\\x07"
    assert visible("a\x1b[2Jb") == "a\\e[2Jb"
    assert visible("\x9b31m") == "\\x9b31m"  # C1 CSI
    assert visible("tab\there") == "tab\\there"
    assert visible("tab\there", keep_tabs=True) == "tab\there"


def test_lines_and_reordering_characters_are_shown():
    assert visible("sh -c 'a\nb'\r") == "sh -c 'a\\nb'\\r"
    assert visible("evil\u202etxt.exe") == "evil\\u202etxt.exe"
    assert visible("x\u2028y") == "x\\u2028y"


def test_plain_text_is_untouched():
    for s in ("", "nginx -g daemon off;", "C:\\path\\x", "[red]x[/]", "ünïcödé ✓ 日本"):
        assert visible(s) == s
    assert visible(None) == "None" and visible(42) == "42"


def test_visible_lines_split_and_strip_cr():
    assert visible_lines("one\r\ntwo\x1b[0m\n") == ["one", "two\\e[0m", ""]


@given(st.text())
def test_no_control_character_survives(s):
    out = visible(s)
    assert not any(ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F for c in out)
    assert "\n" not in out
