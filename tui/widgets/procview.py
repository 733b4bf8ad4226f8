"""The process list: a line-API ScrollView that renders only the rows on screen.

Refreshing 2,000 processes costs one pass over the snapshot (``visible_rows``) and then only
the visible lines are drawn — no widget per row (see PATTERNS.md: DataTable/Tree are too slow).
"""

from __future__ import annotations

from collections.abc import Collection

from rich.segment import Segment
from rich.style import Style
from textual.binding import Binding
from textual.geometry import Size
from textual.scroll_view import ScrollView
from textual.strip import Strip

from envdeck.backend.processes.model import ProcessRow
from envdeck.backend.text import visible

from ..formatting import human_bytes
from ..proctree import VisibleRow, command_text
from ..settings import HighlightRule

# The cells before COMMAND, by how much room there is: USER and S give way first, then RSS, so
# COMMAND keeps at least COMMAND_ROOM cells.
COMMAND_ROOM = 24
FULL = ("pid", "user", "cpu", "rss", "state")
LAYOUTS = (FULL, ("pid", "cpu", "rss"), ("pid", "cpu"))
CELL_HEADER = {
    "pid": f"{'PID':>7} ",
    "user": f"{'USER':<9} ",
    "cpu": f"{'CPU%':>5} ",
    "rss": f"{'RSS':>6} ",
    "state": "S ",
}


def layout_for(width: int) -> tuple[str, ...]:
    """The cells that fit before COMMAND in ``width`` columns (all of them when unknown)."""
    for layout in LAYOUTS:
        if width <= 0 or header_width(layout) + COMMAND_ROOM <= width:
            return layout
    return LAYOUTS[-1]


def header_width(layout: tuple[str, ...]) -> int:
    """Cells before COMMAND, with the space before it."""
    return sum(len(CELL_HEADER[c]) for c in layout) + 1


def header(layout: tuple[str, ...] = FULL) -> str:
    """The column header line for ``layout``."""
    return "".join(CELL_HEADER[c] for c in layout) + " COMMAND"


HEADER = header()


class ProcessView(ScrollView, can_focus=True):
    """Rows of :class:`VisibleRow` with a cursor; the pane owns filtering and sorting."""

    COMPONENT_CLASSES = {
        "processview--cursor",
        "processview--emulated",
        "processview--badge",
        "processview--container",
        "processview--dim",
    }
    BINDINGS = [
        Binding("up", "cursor(-1)", "Up", show=False, id="process.up"),
        Binding("down", "cursor(1)", "Down", show=False, id="process.down"),
        Binding("pageup", "page(-1)", "Page up", show=False, id="process.pageup"),
        Binding("pagedown", "page(1)", "Page down", show=False, id="process.pagedown"),
        Binding("home", "jump(0)", "Top", show=False, id="process.top"),
        Binding("end", "jump(-1)", "Bottom", show=False, id="process.bottom"),
        Binding("j", "cursor(1)", "Down (k is Signal, as in htop)", show=False, id="process.j"),
        Binding("g", "jump(0)", "Top", show=False, id="process.g"),
        Binding("G", "jump(-1)", "Bottom", show=False, id="process.G"),
    ]

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.rows: list[VisibleRow] = []
        self.cursor = 0
        self.follow = False
        self.rules: list[HighlightRule] = []
        self._rule_styles: dict[int, Style | None] = {}

    @property
    def cell_layout(self) -> tuple[str, ...]:
        """The cells shown before COMMAND at the view's width."""
        return layout_for(self.size.width)

    @property
    def selected(self) -> ProcessRow | None:
        """The process under the cursor."""
        if 0 <= self.cursor < len(self.rows):
            return self.rows[self.cursor].row
        return None

    def set_rows(self, rows: list[VisibleRow], changed: Collection[int] | None = None) -> None:
        """Replace the rows; the cursor follows its pid in follow mode, else keeps its line.

        ``changed``: the pids whose rows changed values in place since the last call. Given it,
        only the lines on screen that now show another row (or a changed one) are repainted.
        """
        old, old_rows, old_cursor = self.selected, self.rows, self.cursor
        self.rows = rows
        self._rule_styles.clear()
        if self.follow and old is not None:
            for index, shown in enumerate(rows):
                if shown.row["pid"] == old["pid"]:
                    self.cursor = index
                    break
        self.cursor = max(0, min(self.cursor, len(rows) - 1))
        width = max((len(command_text(r.row)) for r in rows[:500]), default=0) + 40
        top = self.scroll_offset.y
        size = Size(max(width, self.size.width), len(rows))
        if changed is None:
            self.virtual_size = size
        elif size != self.virtual_size:  # (as a reactive it would repaint every line)
            self.set_reactive(ProcessView.virtual_size, size)
            self.refresh(layout=True, repaint=False)  # the scrollbars follow
        if self.follow:
            self.scroll_to(y=max(0, self.cursor - self.size.height // 2), animate=False)
        if changed is None or self.scroll_offset.y != top:
            self.refresh()
            return
        for index in range(top, top + self.size.height):
            before = old_rows[index] if index < len(old_rows) else None
            now = rows[index] if index < len(rows) else None
            if before is None and now is None:
                break
            if (
                before is None
                or now is None
                or before.row is not now.row
                or before[1:] != now[1:]
                or now.row["pid"] in changed
                or index in (old_cursor, self.cursor)
                and old_cursor != self.cursor
            ):
                self.refresh_line(index)

    def move_cursor(self, index: int) -> None:
        """Put the cursor on line ``index`` and keep it visible."""
        if not self.rows:
            return
        self.cursor = max(0, min(index, len(self.rows) - 1))
        top = self.scroll_offset.y
        height = max(1, self.size.height)
        if self.cursor < top:
            self.scroll_to(y=self.cursor, animate=False)
        elif self.cursor >= top + height:
            self.scroll_to(y=self.cursor - height + 1, animate=False)
        self.refresh()

    def action_cursor(self, delta: int) -> None:
        """Move the cursor by ``delta`` lines."""
        self.move_cursor(self.cursor + delta)

    def action_page(self, direction: int) -> None:
        """Move the cursor by one screen."""
        self.move_cursor(self.cursor + direction * max(1, self.size.height - 1))

    def action_jump(self, index: int) -> None:
        """First (0) or last (-1) line."""
        self.move_cursor(index if index >= 0 else len(self.rows) - 1)

    def on_focus(self) -> None:
        """The cursor line looks different with focus: repaint."""
        self.refresh()

    def on_blur(self) -> None:
        """See on_focus."""
        self.refresh()

    def on_click(self, event) -> None:  # noqa: ANN001 - textual.events.Click
        """Click selects the line under the pointer."""
        self.move_cursor(self.scroll_offset.y + event.y)

    def _rule_style(self, row: ProcessRow, command: str) -> Style | None:
        pid = row["pid"]
        if pid not in self._rule_styles:
            style = None
            for rule in self.rules:
                if rule.matches(row, command):
                    style = rule.style
                    break
            self._rule_styles[pid] = style
        return self._rule_styles[pid]

    def render_line(self, y: int) -> Strip:
        """Draw screen line ``y`` (only called for lines on screen)."""
        scroll_x, scroll_y = self.scroll_offset
        index = scroll_y + y
        width = self.size.width
        base = self.rich_style
        if index >= len(self.rows):
            return Strip.blank(width, base)
        line = self.rows[index]
        row = line.row
        emulated = row.get("emulated")
        command = command_text(row)
        style = base
        if emulated:
            style += self.get_component_rich_style("processview--emulated")
        elif not line.matched:
            style += self.get_component_rich_style("processview--dim")
        rule = self._rule_style(row, command)
        if rule is not None:
            style += rule
        if index == self.cursor and self.has_focus:
            style += self.get_component_rich_style("processview--cursor")
        elif index == self.cursor:
            style += Style(reverse=True)
        marker = "▸ " if line.collapsed else ("▾ " if line.has_children else "  ")
        # Every cell that comes from the process (or a recording) is shown with visible().
        values = {
            "pid": f"{row.get('pid', 0):>7} ",
            "user": f"{visible(row.get('user') or '?')[:9]:<9} ",
            "cpu": f"{(row.get('cpu_percent') or 0.0):>5.1f} ",
            "rss": f"{human_bytes(row.get('rss_bytes')):>6} ",
            "state": f"{visible(row.get('state') or ' ')[:1]} ",
        }
        cells = "".join(values[c] for c in self.cell_layout) + f" {'  ' * line.depth}{marker}"
        segments = [Segment(cells, style)]
        if emulated:
            badge = self.get_component_rich_style("processview--badge")
            segments.append(Segment(f" {visible(emulated.get('arch') or '?')} ", style + badge))
            segments.append(Segment(" ", style))
        if row.get("container"):
            tag = self.get_component_rich_style("processview--container")
            segments.append(Segment(f"[{visible(row['container'])}] ", style + tag))
        segments.append(Segment(visible(command), style))
        strip = Strip(segments).extend_cell_length(scroll_x + width, style)
        return strip.crop(scroll_x, scroll_x + width)
