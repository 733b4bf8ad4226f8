"""What Enter's detail view shows, without the view: a tab's loader or live widget, and fields
as ``key: value`` text. The panes use these as they render; :mod:`.details` (the view, with
Textual's tabs) is imported only when a view first opens."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, is_dataclass

from rich.text import Text
from textual.widget import Widget

from envdeck.backend import units
from envdeck.backend.text import visible

from ..formatting import plain

Loader = Callable[[], str | Text]


@dataclass(frozen=True)
class LiveTab:
    """A tab drawn by a widget that follows the model by itself (made when the screen opens)."""

    make: Callable[[], Widget]


TIME_KEYS = ("ts", "start_time", "started_at", "created", "finished_at")


def fields_text(item: object, *, now: float | None = None) -> Text:
    """A dataclass (an event) or a dict as ``key: value`` lines, as the CLI shows them: sizes in
    human units, times local with their age, percents with a %; nested values as compact JSON
    (which escapes control characters); every value made visible."""
    data = asdict(item) if is_dataclass(item) and not isinstance(item, type) else item
    if not isinstance(data, dict):
        return plain(data)
    now = time.time() if now is None else now
    width = max((len(str(k)) for k in data), default=0)
    out = Text()
    for key, value in data.items():
        if value is None or value == "" or value == [] or value == {}:
            continue
        out.append(f"{str(key):<{width}}  ", style="bold")
        out.append(visible(human_value(str(key), value, now)) + "\n")
    return out


def human_value(key: str, value: object, now: float) -> str:
    """One field's value for a person (see :func:`fields_text`)."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int | float):
        if key in TIME_KEYS or key.endswith("_at"):
            stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(value))
            return f"{stamp} ({units.human_duration(now - value)} ago)"
        if key.endswith("bytes") or key == "bytes":
            return units.human_bytes(value)
        if key.endswith("percent"):
            return f"{value:.1f} %"
        if key.endswith("_s") or key.endswith("seconds"):
            return f"{value:.1f}s"
        return str(value)
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return ", ".join(value)
    if isinstance(value, dict | list):
        return json.dumps(value, default=str)
    return str(value)
