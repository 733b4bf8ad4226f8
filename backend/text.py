"""Text from guests, processes, containers and files is data: shown with its control
characters made visible, never sent raw to a terminal and never parsed as markup.

``visible()`` is the one place that decides how such text looks on screen (CLI and TUI):
C0/C1 controls and DEL become backslash escapes (``\\e``, ``\\n``, ``\\x9b``), and so do the
Unicode characters that reorder or break lines (bidi overrides, line/paragraph separators).
JSON output needs none of this: ``json.dumps`` already escapes control characters.
"""

from __future__ import annotations

import re

_NAMED = {"\x1b": "\\e", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\x00": "\\0"}

# C0 (but tab when kept), DEL, C1, and the Unicode format characters that move or hide text.
_UNSAFE = re.compile(
    r"[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]"
)
_UNSAFE_KEEP_TAB = re.compile(
    r"[\x00-\x08\x0a-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]"
)


def _escape(match: re.Match[str]) -> str:
    char = match.group(0)
    named = _NAMED.get(char)
    if named is not None:
        return named
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def visible(text: object, *, keep_tabs: bool = False) -> str:
    """``text`` (any value, str() of it) on one line, every control character made visible.

    Backslashes are not doubled (a Windows path or a regex reads as written); only the
    characters that would act on a terminal or reorder the line are replaced.
    """
    s = text if isinstance(text, str) else str(text)
    pattern = _UNSAFE_KEEP_TAB if keep_tabs else _UNSAFE
    if not pattern.search(s):
        return s
    return pattern.sub(_escape, s)


def visible_lines(text: str) -> list[str]:
    """Multi-line text (a log, a script) as lines, each made visible (tabs kept)."""
    return [visible(line.rstrip("\r"), keep_tabs=True) for line in text.split("\n")]
